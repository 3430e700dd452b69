"""Poisson exceedance, Benjamini–Hochberg, EWMA and Gi* checked against hand-worked values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import poisson

from services.router.hotspots.getis_ord import gi_star
from services.router.hotspots.stats import (
    EwmaState,
    benjamini_hochberg,
    ewma_smoothing,
    ewma_update,
    poisson_exceedance_p,
)
from tests.unit.router import herts_adjacency as load_herts_adjacency


class TestPoissonExceedance:
    @pytest.mark.parametrize(("count", "expected", "closed_form"), [
        (1, 1.0, 1 - math.exp(-1)),                      # P(X >= 1) = 1 - P(0)
        (3, 2.0, 1 - 5 * math.exp(-2)),                  # 1 - e^-2 (1 + 2 + 2)
        (5, 0.2, 1 - math.exp(-0.2) * (1 + 0.2 + 0.02 + 0.008 / 6 + 0.0016 / 24)),
        (10, 2.0, 1 - math.exp(-2) * sum(2**k / math.factorial(k) for k in range(10))),
    ])
    def test_given_a_count_and_rate_then_p_is_the_upper_tail_from_the_count_inclusive(
            self, count: int, expected: float, closed_form: float) -> None:
        assert poisson_exceedance_p(count, expected) == pytest.approx(closed_form, rel=1e-9)

    @pytest.mark.parametrize("count", [1, 2, 7, 20, 60])
    @pytest.mark.parametrize("expected", [0.05, 0.7, 3.0, 25.0])
    def test_given_any_cell_then_p_equals_scipy_poisson_sf_of_count_minus_one(
            self, count: int, expected: float) -> None:
        assert poisson_exceedance_p(count, expected) == pytest.approx(
            poisson.sf(count - 1, expected), rel=1e-12, abs=1e-300)

    def test_given_a_far_tail_count_then_p_keeps_precision_instead_of_rounding_to_zero(
            self) -> None:
        assert 0.0 < poisson_exceedance_p(40, 2.0) < 1e-25

    def test_given_a_zero_count_then_p_is_one(self) -> None:
        assert poisson_exceedance_p(0, 3.0) == 1.0

    def test_given_a_zero_rate_then_any_event_is_impossible_under_the_null(self) -> None:
        assert poisson_exceedance_p(1, 0.0) == 0.0

    def test_given_a_negative_rate_then_it_is_refused(self) -> None:
        with pytest.raises(ValueError, match="non-negative"):
            poisson_exceedance_p(3, -1.0)


# Benjamini & Hochberg (1995), section 4: 15 p-values from a clinical trial; at q = 0.05 the
# procedure rejects the four smallest (Bonferroni would reject three).
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
           0.4262, 0.5719, 0.6528, 0.7590, 1.0000]


class TestBenjaminiHochberg:
    def test_given_the_1995_worked_example_then_the_four_smallest_are_rejected(self) -> None:
        result = benjamini_hochberg(BH_1995, alpha=0.05)
        assert result.rejected == (True,) * 4 + (False,) * 11
        assert result.threshold == pytest.approx(4 * 0.05 / 15)

    def test_given_shuffled_input_then_rejections_follow_each_p_value_not_its_position(
            self) -> None:
        shuffled = BH_1995[::-1]
        result = benjamini_hochberg(shuffled, alpha=0.05)
        assert [p for p, r in zip(shuffled, result.rejected, strict=True) if r] == [
            0.0095, 0.0019, 0.0004, 0.0001]

    def test_given_a_rank_that_fails_before_one_that_passes_then_step_up_rejects_both(
            self) -> None:
        # thresholds for m=4, alpha=0.05: .0125 .025 .0375 .05; rank 2 fails, rank 3 passes.
        result = benjamini_hochberg([0.005, 0.03, 0.031, 0.9], alpha=0.05)
        assert result.rejected == (True, True, True, False)
        assert result.threshold == pytest.approx(0.0375)

    def test_given_nothing_small_enough_then_nothing_is_rejected_and_threshold_is_zero(
            self) -> None:
        result = benjamini_hochberg([0.02, 0.5, 0.9], alpha=0.01)
        assert result.rejected == (False, False, False)
        assert result.threshold == 0.0
        assert result.n_rejected == 0

    def test_given_a_declared_family_then_it_matches_padding_with_p_equal_one(self) -> None:
        small = [0.0001, 0.0009, 0.004]
        padded = benjamini_hochberg([*small, *([1.0] * 97)], alpha=0.05)
        declared = benjamini_hochberg(small, alpha=0.05, family_size=100)
        assert declared.rejected == padded.rejected[:3]
        assert declared.threshold == padded.threshold

    def test_given_a_family_smaller_than_the_p_values_then_it_is_refused(self) -> None:
        with pytest.raises(ValueError, match="family_size"):
            benjamini_hochberg([0.1, 0.2], alpha=0.05, family_size=1)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
    def test_given_any_p_values_then_rejections_are_exactly_those_at_or_below_the_threshold(
            self, p_values: list[float]) -> None:
        result = benjamini_hochberg(p_values, alpha=0.1)
        assert result.threshold <= 0.1
        assert result.rejected == tuple(
            result.threshold > 0 and p <= result.threshold for p in p_values)


class TestEwma:
    def test_given_a_half_life_of_one_window_then_new_and_old_weigh_equally(self) -> None:
        a = ewma_smoothing(1.0)
        assert a == pytest.approx(0.5)
        assert ewma_update(10.0, 20.0, a) == pytest.approx(15.0)

    def test_given_no_previous_value_then_the_first_observation_seeds_it(self) -> None:
        assert ewma_update(None, 7.0, 0.3) == 7.0

    def test_given_half_life_windows_of_zeros_then_a_settled_mean_halves(self) -> None:
        a = ewma_smoothing(6.0)
        state = EwmaState()
        for _ in range(400):
            state = state.update(10.0, a)
        assert state.mean == pytest.approx(10.0)
        assert state.skip_zero_windows(6, a).mean == pytest.approx(5.0, rel=1e-6)

    def test_given_two_observations_then_the_bias_corrected_mean_weighs_the_first_fairly(
            self) -> None:
        a = ewma_smoothing(4.0)
        state = EwmaState().update(2.0, a).update(4.0, a)
        assert state.mean == pytest.approx(((1 - a) * 2.0 + 4.0) / (2 - a))
        assert state.windows == 2

    def test_given_no_observations_then_there_is_no_mean(self) -> None:
        assert EwmaState().mean is None

    def test_given_a_non_positive_half_life_then_it_is_refused(self) -> None:
        with pytest.raises(ValueError, match="half-life"):
            ewma_smoothing(0.0)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(0, 30), min_size=1, max_size=10), st.integers(0, 50),
           st.floats(0.5, 100.0))
    def test_given_idle_windows_then_lazy_decay_and_fold_equal_feeding_explicit_zeros(
            self, history: list[int], idle: int, halflife: float) -> None:
        a = ewma_smoothing(halflife)
        state = EwmaState()
        for x in history:
            state = state.update(float(x), a)
        explicit = state
        for _ in range(idle):
            explicit = explicit.update(0.0, a)
        lazy = state.skip_zero_windows(idle, a)
        assert lazy.windows == explicit.windows
        assert lazy.total == pytest.approx(explicit.total, rel=1e-9, abs=1e-12)
        assert lazy.weight == pytest.approx(explicit.weight, rel=1e-9)
        folded, stepped = state.fold(idle, 9.0, a), explicit.update(9.0, a)
        assert folded.windows == stepped.windows
        assert folded.total == pytest.approx(stepped.total, rel=1e-9, abs=1e-12)
        assert folded.weight == pytest.approx(stepped.weight, rel=1e-9)


LINE = {"a": frozenset("b"), "b": frozenset("ac"), "c": frozenset("bd"), "d": frozenset("ce"),
        "e": frozenset("d")}


@pytest.fixture(scope="module")
def herts_adjacency() -> dict[str, frozenset[str]]:
    return load_herts_adjacency()


class TestGiStar:
    def test_given_a_spike_in_the_middle_of_a_line_then_z_matches_the_hand_calculation(
            self) -> None:
        # n=5, mean 2, S=4; ward c: block {b,c,d}, W=3: (10 - 2*3) / (4*sqrt((15-9)/4)).
        z = gi_star({"c": 10.0}, LINE)
        assert z["c"] == pytest.approx(4 / (4 * math.sqrt(1.5)))
        assert z["a"] == pytest.approx(-4 / (4 * math.sqrt(1.5)))
        assert z["b"] == z["d"] > z["a"] == z["e"]

    def test_given_a_cluster_in_two_adjacent_real_wards_then_both_score_high(
            self, herts_adjacency: dict[str, frozenset[str]]) -> None:
        ward = "E05004711"  # Tring Central
        partner = "E05004712"  # Tring East
        assert partner in herts_adjacency[ward]
        counts = dict.fromkeys(herts_adjacency, 2.0)
        counts[ward] = counts[partner] = 20.0
        z = gi_star(counts, herts_adjacency)
        assert z[ward] > 3.0
        assert z[partner] > 3.0
        far = [w for w in herts_adjacency if w not in herts_adjacency[ward] | herts_adjacency[
            partner] | {ward, partner}]
        assert max(abs(z[w]) for w in far) < 1.0

    def test_given_uniform_counts_then_every_z_is_zero(
            self, herts_adjacency: dict[str, frozenset[str]]) -> None:
        z = gi_star(dict.fromkeys(herts_adjacency, 3.0), herts_adjacency)
        assert set(z) == set(herts_adjacency)
        assert max(abs(v) for v in z.values()) < 1e-9

    def test_given_missing_wards_then_they_count_as_zero(self) -> None:
        assert gi_star({"c": 10.0}, LINE) == gi_star(
            {"a": 0.0, "b": 0.0, "c": 10.0, "d": 0.0, "e": 0.0}, LINE)
