"""Pure statistics of the issue-17 hot-spot engine: NB tails, the batched baseline fit (against
statsmodels), dispersion estimates, the NB CUSUM, the space-time scan and the explanation."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy.stats import nbinom, poisson

from services.router.hotspots.detector import Alert
from services.router.hotspots.explain import explain, odds
from services.router.hotspots.nb import (
    fit_loglinear,
    moment_dispersion,
    nb_cusum_llr,
    nb_upper_p,
    nb_upper_p_array,
    outbreak_weights,
    pooled_alpha,
    shrunk_alpha,
    two_level_shape,
    two_level_upper_p_array,
)
from services.router.hotspots.scan import build_zones, scan


class TestTail:
    @pytest.mark.parametrize(("y", "mu", "alpha"), [
        (5, 2.0, 0.3), (30, 12.5, 0.1), (1, 0.2, 2.0), (12, 0.1, 7.4), (40, 30.0, 0.4)])
    def test_given_a_non_integer_size_then_the_tail_is_scipys_nbinom(
            self, y: int, mu: float, alpha: float) -> None:
        size = 1 / alpha
        want = nbinom.sf(y - 1, size, size / (size + mu))
        assert nb_upper_p(y, mu, alpha) == pytest.approx(want, rel=1e-9)

    def test_given_no_dispersion_then_the_tail_is_poisson(self) -> None:
        assert nb_upper_p(9, 4.0, 0.0) == pytest.approx(poisson.sf(8, 4.0), rel=1e-12)

    def test_given_zero_count_or_zero_mean_then_edges_hold(self) -> None:
        assert nb_upper_p(0, 3.0, 0.2) == 1.0
        assert nb_upper_p(1, 0.0, 0.2) == 0.0

    def test_given_bad_input_then_it_says_which(self) -> None:
        with pytest.raises(ValueError, match="mu"):
            nb_upper_p(3, -1.0, 0.1)

    def test_the_array_form_equals_the_scalar_one(self) -> None:
        y = np.array([0, 3, 7, 12, 5])
        mu = np.array([1.0, 2.0, 2.5, 0.3, 5.0])
        a = np.array([0.2, 0.0, 0.5, 1.0, 0.05])
        got = nb_upper_p_array(y, mu, a)
        want = [nb_upper_p(int(c), m, al) for c, m, al in zip(y, mu, a, strict=True)]
        assert got == pytest.approx(want, rel=1e-9)


class TestFit:
    def test_given_counts_then_the_batched_fit_equals_statsmodels_glm(self) -> None:
        sm = pytest.importorskip("statsmodels.api")
        rng = np.random.default_rng(3)
        t = np.arange(26) / 10.0
        cells, alphas = [], [0.1, 0.4, 0.02]
        for k, alpha in enumerate(alphas):
            mu = np.exp(1.5 + 0.3 * k + 0.2 * t)
            size = 1 / alpha
            cells.append(rng.negative_binomial(size, size / (size + mu)).astype(float))
        y = np.array(cells)
        x = np.repeat(np.column_stack([np.ones_like(t), t])[None], len(alphas), axis=0)
        prior = np.ones_like(y)
        prior[1, 5] = 0.25  # a down-weighted week
        beta, cov = fit_loglinear(y, x, prior, np.array(alphas))
        for c, alpha in enumerate(alphas):
            model = sm.GLM(y[c], x[c], family=sm.families.NegativeBinomial(alpha=alpha),
                           var_weights=prior[c])
            ref = model.fit(scale=1.0)
            assert beta[c] == pytest.approx(ref.params, rel=1e-4)
            assert cov[c] == pytest.approx(ref.cov_params(), rel=1e-3)

    def test_a_zero_weight_drops_a_week(self) -> None:
        y = np.array([[4.0, 4.0, 4.0, 400.0]])
        x = np.ones((1, 4, 1))
        beta, _ = fit_loglinear(y, x, np.array([[1.0, 1.0, 1.0, 0.0]]), np.array([0.1]))
        assert math.exp(beta[0, 0]) == pytest.approx(4.0)

    def test_outbreak_weights_leave_ordinary_weeks_alone_and_shrink_outliers(self) -> None:
        w = outbreak_weights(np.array([-3.0, 0.5, 2.58, 5.16]))
        assert w == pytest.approx([1.0, 1.0, 1.0, 0.25])


class TestDispersion:
    def test_given_nb_counts_then_the_pooled_moment_estimate_recovers_alpha(self) -> None:
        rng = np.random.default_rng(11)
        mu = np.repeat(rng.uniform(2, 30, 200)[:, None], 26, axis=1)
        alpha = 0.25
        size = 1 / alpha
        y = rng.negative_binomial(size, size / (size + mu)).astype(float)
        num, den = moment_dispersion(y, mu, np.ones_like(y), np.zeros(200))
        assert pooled_alpha(num, den) == pytest.approx(alpha, rel=0.1)

    def test_given_poisson_counts_then_alpha_is_near_zero(self) -> None:
        rng = np.random.default_rng(12)
        mu = np.full((200, 26), 10.0)
        y = rng.poisson(mu).astype(float)
        num, den = moment_dispersion(y, mu, np.ones_like(y), np.zeros(200))
        assert pooled_alpha(num, den) < 0.01

    def test_a_sparse_cell_takes_the_pool_and_a_busy_one_its_own(self) -> None:
        num = np.array([0.0, 26 * 0.5 * 900.0])
        den = np.array([0.01, 26 * 900.0])
        got = shrunk_alpha(num, den, pool=0.1, prior_den=np.array([20 * 0.01, 20 * 900.0]))
        assert got[0] == pytest.approx(0.1, rel=0.05)
        assert got[1] > 0.3


class TestCusum:
    def test_without_dispersion_the_increment_is_the_poisson_llr(self) -> None:
        got = nb_cusum_llr(np.array([7.0]), np.array([4.0]), np.array([0.0]), 2.0)
        assert got[0] == pytest.approx(7 * math.log(2) - 4.0)

    def test_the_increment_is_negative_at_the_mean_and_positive_at_the_shift(self) -> None:
        mu, a = np.array([10.0]), np.array([0.1])
        assert nb_cusum_llr(np.array([10.0]), mu, a, 2.0)[0] < 0
        assert nb_cusum_llr(np.array([20.0]), mu, a, 2.0)[0] > 0

    def test_more_dispersion_means_less_evidence_per_excess(self) -> None:
        y, mu = np.array([20.0]), np.array([10.0])
        assert nb_cusum_llr(y, mu, np.array([0.5]), 2.0)[0] < nb_cusum_llr(
            y, mu, np.array([0.01]), 2.0)[0]


LINE = [f"W{i}" for i in range(12)]
LINE_ADJ = {w: frozenset(x for x in (LINE[i - 1] if i else None,
                                     LINE[i + 1] if i + 1 < len(LINE) else None) if x)
            for i, w in enumerate(LINE)}


class TestScan:
    def _world(self, seed: int, plant: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        mu = np.full((len(LINE), 2), 6.0)
        lam = mu.copy()
        for i, f in plant.items():
            lam[i] *= f
        return rng.poisson(lam).astype(float), mu

    def test_zones_are_wards_pairs_and_neighbourhoods_without_repeats(self) -> None:
        zones, matrix = build_zones(LINE, LINE_ADJ)
        assert (0,) in zones
        assert (0, 1) in zones
        assert (1, 0, 2) in zones
        assert len({frozenset(z) for z in zones}) == len(zones)
        assert matrix.sum() == sum(len(z) for z in zones)

    def test_zones_hold_a_ward_with_any_two_of_its_neighbours(self) -> None:
        # A star: the centre has four neighbours. A hot spot on the centre and two of them is
        # a zone of its own with neighbours=2 (the default); with pairs and whole
        # neighbourhoods only it could be seen only diluted (5 wards) or in part (2).
        star = ["C", "N1", "N2", "N3", "N4"]
        adj = {"C": frozenset(star[1:]), **{n: frozenset({"C"}) for n in star[1:]}}
        two, _ = build_zones(star, adj, neighbours=2)
        one, _ = build_zones(star, adj, neighbours=1)
        triples = {frozenset({0, a, b}) for a in range(1, 5) for b in range(a + 1, 5)}
        assert triples <= {frozenset(z) for z in two}
        assert not triples & {frozenset(z) for z in one}
        # The centre alone, with one, two or all four; each outer ward alone.
        assert len({frozenset(z) for z in two}) == len(two) == 1 + 4 + 6 + 1 + 4

    def test_given_adjacent_wards_in_excess_then_one_cluster_with_one_p(self) -> None:
        obs, mu = self._world(1, {4: 2.5, 5: 2.5})
        zones, matrix = build_zones(LINE, LINE_ADJ)
        got = scan(obs, mu, np.zeros(len(LINE)), zones, matrix, LINE, seed_key="t/1")
        assert got, "the planted pair was not found"
        assert {"W4", "W5"} <= set(got[0].wards)
        assert got[0].p_value <= 0.01

    def test_given_no_excess_then_no_cluster(self) -> None:
        obs, mu = self._world(2, {})
        zones, matrix = build_zones(LINE, LINE_ADJ)
        assert scan(obs, mu, np.zeros(len(LINE)), zones, matrix, LINE, seed_key="t/2") == []

    def test_the_same_key_gives_the_same_p_values(self) -> None:
        obs, mu = self._world(1, {4: 2.5, 5: 2.5})
        zones, matrix = build_zones(LINE, LINE_ADJ)
        a = scan(obs, mu, np.full(len(LINE), 0.1), zones, matrix, LINE, seed_key="k")
        b = scan(obs, mu, np.full(len(LINE), 0.1), zones, matrix, LINE, seed_key="k")
        assert a == b


class TestTwoLevelTail:
    """The week predictive: Poisson(mu L1 L2), two unit-mean gamma levels, the NB's variance."""

    def test_the_two_levels_have_the_nb_variance(self) -> None:
        a = two_level_shape(np.array([0.1, 0.47, 2.0]))
        assert (1 + 1 / a) ** 2 - 1 == pytest.approx([0.1, 0.47, 2.0], rel=1e-12)

    @pytest.mark.parametrize(("y", "mu", "alpha"), [(18, 2.5, 0.47), (40, 6.0, 0.47),
                                                   (12, 2.5, 0.11)])
    def test_given_two_gamma_levels_then_the_tail_is_their_simulation(
            self, y: int, mu: float, alpha: float) -> None:
        rng = np.random.default_rng(11)
        a = float(two_level_shape(np.array([alpha]))[0])
        n = 2_000_000
        draws = rng.poisson(mu * rng.gamma(a, 1 / a, n) * rng.gamma(a, 1 / a, n))
        empirical = float((draws >= y).mean())
        got = float(two_level_upper_p_array(np.array([y]), np.array([mu]), np.array([alpha]))[0])
        assert empirical > 2e-4  # enough draws in the tail for a 15 % check
        assert got == pytest.approx(empirical, rel=0.15)

    def test_in_the_body_it_is_the_nb_and_without_dispersion_poisson(self) -> None:
        p = two_level_upper_p_array(np.array([4, 9]), np.array([3.0, 4.0]),
                                    np.array([0.3, 0.0]))
        assert p[0] == pytest.approx(nb_upper_p(4, 3.0, 0.3), rel=0.05)
        assert p[1] == pytest.approx(poisson.sf(8, 4.0), rel=1e-12)

    def test_given_a_1_in_10000_week_then_the_nb_calls_it_far_rarer_and_the_two_levels_do_not(
            self) -> None:
        # 26 against a mean of 2.5 at alpha 0.47 happens about once in 80,000 weeks when the
        # week's rate is a product of two gamma levels; the NB says once in 540,000.
        nb = nb_upper_p(26, 2.5, 0.47)
        two = float(two_level_upper_p_array(np.array([26]), np.array([2.5]),
                                            np.array([0.47]))[0])
        assert nb < 2e-6
        assert two > 5 * nb
        assert two == pytest.approx(1.28e-5, rel=0.05)


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = {
        "ward_code": "E05004768", "district_code": None, "category": "police|asb",
        "window": "week", "window_start": datetime(2026, 3, 2, tzinfo=UTC),
        "window_end": datetime(2026, 3, 9, tzinfo=UTC), "count": 31, "expected": 12.4,
        "p_value": 0.00042, "bh_threshold": 0.001, "gi_z": None, "neighbours": (),
        "protocol": "police-district@1", "method": "nb-window", "dispersion": 0.12}
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


class TestExplain:
    @pytest.mark.parametrize(("p", "words"), [
        (0.00042, "about 1 in 2,400"), (0.05, "about 1 in 20"), (0.7, "not unusual"),
        (1e-12, "less than 1 in a billion")])
    def test_odds_are_rounded_words(self, p: float, words: str) -> None:
        assert odds(p) == words

    def test_a_window_alert_says_observed_expected_method_chance_and_variability(self) -> None:
        text = explain(_alert())
        assert "31 incidents in E05004768" in text
        assert "about 12.4 expected" in text
        assert "about 1 in 2,400" in text
        assert "trend" in text
        assert "2.5 times as much as chance" in text

    def test_a_cluster_alert_names_every_ward_once(self) -> None:
        text = explain(_alert(method="scan", cluster=("E05004769", "E05004770"), p_value=0.005))
        assert "3 neighbouring wards" in text
        assert "E05004770" in text
        assert "space-time scan" in text
