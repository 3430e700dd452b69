"""HotspotDetector: windows, alert contents, bounded state, and planted-cluster accuracy.

The planted-cluster and null tests run on the real 186 Hertfordshire wards with a seeded
synthetic background, so their figures are reproducible; run with -s to see them printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from services.core.config.errors import ConfigError
from services.router.hotspots.adjacency import ward_adjacency
from services.router.hotspots.detector import (
    Alert,
    DetectorConfig,
    HotspotDetector,
    WindowKind,
    window_bounds,
    window_index,
)
from tests.unit.router import herts_adjacency, herts_districts

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # 1 January 2024 was a Monday
WEEK = timedelta(weeks=1)

# A line of four wards, A-B-C-D, in district L1 (A, B) and L2 (C, D).
LINE = {"A": frozenset("B"), "B": frozenset("AC"), "C": frozenset("BD"), "D": frozenset("C")}
LINE_DISTRICTS = {"A": "L1", "B": "L1", "C": "L2", "D": "L2"}
WEEKLY = DetectorConfig(window_kinds=("week",), ewma_halflife_windows=4.0, warmup_windows=4)


def weekly_detector(config: DetectorConfig = WEEKLY, *,
                    adjacency: dict[str, frozenset[str]] | None = None) -> HotspotDetector:
    return HotspotDetector(config, adjacency=LINE if adjacency is None else adjacency,
                           districts=LINE_DISTRICTS)


def feed_weeks(detector: HotspotDetector, weeks: Sequence[dict[str, int]],
               category: str = "burglary", first_week: int = 0) -> list[Alert]:
    """One observe per ward per week (Monday 01:00), then close the last week."""
    alerts: list[Alert] = []
    for offset, counts in enumerate(weeks):
        when = MONDAY + (first_week + offset) * WEEK + timedelta(hours=1)
        for ward, n in counts.items():
            if n:
                alerts += detector.observe(ward, category, when, count=n)
    alerts += detector.advance(MONDAY + (first_week + len(weeks)) * WEEK)
    return alerts


BACKGROUND = {"A": 2, "B": 2, "C": 2, "D": 2}


class TestWindows:
    def test_given_a_sunday_night_event_then_its_week_starts_the_monday_before(self) -> None:
        sunday = datetime(2024, 3, 10, 23, 59, tzinfo=UTC)
        start, end = window_bounds("week", window_index("week", sunday))
        assert (start, end) == (datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC))

    def test_given_a_bst_timestamp_then_its_day_and_hour_are_taken_in_utc(self) -> None:
        bst = timezone(timedelta(hours=1))
        moment = datetime(2024, 6, 1, 0, 30, tzinfo=bst)  # 23:30 UTC on 31 May
        assert window_bounds("day", window_index("day", moment))[0] == datetime(
            2024, 5, 31, tzinfo=UTC)
        assert window_bounds("hour", window_index("hour", moment))[0] == datetime(
            2024, 5, 31, 23, tzinfo=UTC)

    def test_given_a_naive_timestamp_then_it_is_taken_as_utc(self) -> None:
        assert window_index("hour", datetime(2024, 3, 7, 14, 5)) == window_index(
            "hour", datetime(2024, 3, 7, 14, 5, tzinfo=UTC))

    @pytest.mark.parametrize(("kind", "step"), [
        ("hour", timedelta(hours=1)), ("day", timedelta(days=1)), ("week", WEEK)])
    def test_given_consecutive_windows_then_their_indices_differ_by_one(
            self, kind: WindowKind, step: timedelta) -> None:
        assert window_index(kind, MONDAY + step) == window_index(kind, MONDAY) + 1
        start, end = window_bounds(kind, window_index(kind, MONDAY))
        assert (start, end) == (MONDAY, MONDAY + step)


class TestAlerts:
    def test_given_a_spike_after_warm_up_then_one_alert_carries_the_cell_details(self) -> None:
        detector = weekly_detector()
        detector.set_protocol("burglary", "herts-burglary@1.2.0")
        alerts = feed_weeks(detector, [BACKGROUND] * 6 + [{**BACKGROUND, "C": 20}])
        assert len(alerts) == 1
        alert = alerts[0]
        assert (alert.ward_code, alert.district_code, alert.category, alert.window) == (
            "C", "L2", "burglary", "week")
        assert (alert.window_start, alert.window_end) == (MONDAY + 6 * WEEK, MONDAY + 7 * WEEK)
        assert alert.count == 20
        assert alert.expected == pytest.approx(2.0)
        assert 0 < alert.p_value <= alert.bh_threshold <= WEEKLY.alpha
        assert alert.protocol == "herts-burglary@1.2.0"
        assert alert.neighbours == ()
        assert alert.gi_z is not None
        assert alert.gi_z > 0

    def test_given_a_spike_during_warm_up_then_there_is_no_alert(self) -> None:
        alerts = feed_weeks(weekly_detector(), [BACKGROUND] * 3 + [{**BACKGROUND, "C": 40}])
        assert alerts == []

    def test_given_a_significant_count_below_min_count_then_there_is_no_alert(self) -> None:
        quiet = {"A": 0, "B": 1, "C": 0, "D": 1}
        detector = weekly_detector()
        assert feed_weeks(detector, [quiet] * 6 + [{**quiet, "A": 4}]) == []
        assert feed_weeks(detector, [{**quiet, "A": 5}], first_week=7)[0].ward_code == "A"

    def test_given_a_spike_spanning_two_neighbours_then_each_names_the_other(self) -> None:
        alerts = feed_weeks(weekly_detector(),
                            [BACKGROUND] * 6 + [{**BACKGROUND, "A": 15, "B": 15}])
        by_ward = {a.ward_code: a for a in alerts}
        assert set(by_ward) == {"A", "B"}
        assert by_ward["A"].neighbours == ("B",)
        assert by_ward["B"].neighbours == ("A",)
        assert by_ward["A"].gi_z is not None
        assert by_ward["A"].gi_z > 1.0

    def test_given_no_adjacency_then_gi_z_is_none_and_no_neighbours_are_named(self) -> None:
        detector = HotspotDetector(WEEKLY, wards=LINE)
        alerts = feed_weeks(detector, [BACKGROUND] * 6 + [{**BACKGROUND, "A": 15, "B": 15}])
        assert [(a.ward_code, a.gi_z, a.neighbours) for a in alerts] == [
            ("A", None, ()), ("B", None, ())]

    def test_given_a_two_week_hot_spot_then_its_first_week_does_not_mask_the_second(
            self) -> None:
        # Half-life 1 window: without capping, week one would lift the baseline to ~7 and
        # week two (count 12, p ~ 0.05) would pass unnoticed.
        config = DetectorConfig(window_kinds=("week",), ewma_halflife_windows=1.0,
                                warmup_windows=4)
        hot = {**BACKGROUND, "D": 12}
        alerts = feed_weeks(weekly_detector(config), [BACKGROUND] * 6 + [hot, hot])
        assert [(a.ward_code, a.window_start) for a in alerts] == [
            ("D", MONDAY + 6 * WEEK), ("D", MONDAY + 7 * WEEK)]

    def test_given_a_ward_outside_the_study_area_then_it_is_judged_against_the_category_mean(
            self) -> None:
        detector = weekly_detector()
        alerts = feed_weeks(detector, [{"A": 1, "B": 2, "C": 3, "D": 2}] * 6 + [{"X": 12}])
        assert [(a.ward_code, a.district_code) for a in alerts] == [("X", None)]
        assert alerts[0].expected == pytest.approx(2.0)  # (1 + 2 + 3 + 2) / 4 wards

    def test_given_an_observation_naming_a_protocol_then_it_overrides_the_category_default(
            self) -> None:
        detector = weekly_detector()
        detector.set_protocol("burglary", "default@1")
        feed_weeks(detector, [BACKGROUND] * 6)
        detector.observe("A", "burglary", MONDAY + 6 * WEEK, count=20, protocol="herts@2")
        (alert,) = detector.advance(MONDAY + 7 * WEEK)
        assert alert.protocol == "herts@2"

    def test_given_midnight_on_sunday_then_hour_day_and_week_close_together_in_order(
            self) -> None:
        config = DetectorConfig(ewma_halflife_windows=1.0, warmup_windows=1)
        detector = HotspotDetector(config, adjacency=LINE)
        for ward in LINE:
            detector.observe(ward, "asb", MONDAY + timedelta(minutes=30))
        sunday_night = MONDAY + 2 * WEEK - timedelta(minutes=50)
        # The windows this closes are each category's first, so nothing is tested yet.
        assert detector.observe("A", "asb", sunday_night, count=20) == []
        alerts = detector.advance(MONDAY + 2 * WEEK)
        assert [(a.window, a.ward_code, a.window_end) for a in alerts] == [
            ("hour", "A", MONDAY + 2 * WEEK), ("day", "A", MONDAY + 2 * WEEK),
            ("week", "A", MONDAY + 2 * WEEK)]


class TestTimeAndState:
    def test_given_an_event_for_a_closed_window_then_it_is_dropped_and_counted_late(
            self) -> None:
        detector = weekly_detector()
        detector.observe("A", "burglary", MONDAY + WEEK)
        detector.observe("A", "burglary", MONDAY + timedelta(days=3))
        assert detector.late_events == {"week": 1}

    def test_given_an_event_later_in_the_open_window_then_it_is_counted_not_late(self) -> None:
        detector = HotspotDetector(adjacency=LINE)
        detector.observe("A", "asb", MONDAY + timedelta(hours=5))
        detector.observe("A", "asb", MONDAY + timedelta(hours=1))  # same day and week
        assert detector.late_events == {"hour": 1, "day": 0, "week": 0}

    def test_given_the_same_stream_twice_then_the_alerts_are_identical(self) -> None:
        def run() -> list[Alert]:
            return feed_weeks(weekly_detector(),
                              [BACKGROUND] * 6 + [{"A": 15, "B": 14, "C": 2, "D": 30}])
        first, second = run(), run()
        assert len(first) == 3
        assert first == second

    def test_given_a_zero_count_then_it_is_refused(self) -> None:
        with pytest.raises(ValueError, match="count"):
            weekly_detector().observe("A", "asb", MONDAY, count=0)

    def test_given_100k_events_then_state_stays_within_wards_x_categories_x_kinds(
            self) -> None:
        adjacency = ward_adjacency()
        wards = sorted(adjacency)
        categories = ["asb", "burglary", "violence", "drugs"]
        rng = np.random.default_rng(2024)
        n = 100_000
        seconds = np.sort(rng.integers(0, 26 * 7 * 86400, size=n)).tolist()
        ward_ix = rng.integers(len(wards), size=n).tolist()
        cat_ix = rng.integers(len(categories), size=n).tolist()
        detector = HotspotDetector(adjacency=adjacency)
        kinds = len(detector.config.window_kinds)
        # open counter + baseline per cell and kind, a prior per category and kind, protocols.
        bound = kinds * len(categories) * (2 * len(wards) + 1) + len(categories)
        largest = 0
        for i in range(n):
            detector.observe(wards[ward_ix[i]], categories[cat_ix[i]],
                             MONDAY + timedelta(seconds=seconds[i]))
            if i % 500 == 0:
                largest = max(largest, detector.state_size())
        largest = max(largest, detector.state_size())
        print(f"\nstate_size: max {largest} keys over {n} events (bound {bound})")
        assert 0 < largest <= bound, f"state grew to {largest} keys, bound {bound}"


class TestConfigAndAlertShape:
    def test_given_alpha_outside_zero_one_then_config_error_names_the_field(self) -> None:
        with pytest.raises(ConfigError, match="alpha"):
            DetectorConfig(alpha=0.0)

    def test_given_a_half_life_map_missing_a_kind_then_config_error_names_it(self) -> None:
        with pytest.raises(ConfigError, match="'hour'"):
            DetectorConfig(ewma_halflife_windows={"day": 42.0, "week": 6.0})

    def test_given_a_single_number_then_it_applies_to_every_window_kind(self) -> None:
        config = DetectorConfig(ewma_halflife_windows=3.0, warmup_windows=2)
        assert [config.halflife(k) for k in ("hour", "day", "week")] == [3.0, 3.0, 3.0]
        assert config.warmup("hour") == 2

    def test_given_the_defaults_then_half_life_and_warm_up_are_six_weeks_of_time(self) -> None:
        config = DetectorConfig()
        assert (config.alpha, config.min_count, config.suppress_below) == (0.01, 5, 10)
        for kind, per_week in (("hour", 168), ("day", 7), ("week", 1)):
            assert config.halflife(kind) == 6 * per_week
            assert config.warmup(kind) == 6 * per_week

    def test_given_counts_either_side_of_the_suppression_line_then_small_ones_are_hidden(
            self) -> None:
        alert = make_alert(count=7)
        assert alert.public_count(10) == "<10"
        assert alert.public_count(5) == "7"
        assert make_alert(count=10).public_count(10) == "10"

    def test_given_an_alert_then_to_dict_is_json_and_can_suppress_the_count(self) -> None:
        alert = make_alert(count=7)
        plain = json.loads(json.dumps(alert.to_dict()))
        assert plain["count"] == 7
        assert plain["window_start"] == "2024-01-01T00:00:00+00:00"
        assert plain["neighbours"] == ["E05004712"]
        assert alert.to_dict(suppress_below=10)["count"] == "<10"


def make_alert(count: int) -> Alert:
    return Alert(ward_code="E05004711", district_code="E07000096", category="asb",
                 window="week", window_start=MONDAY, window_end=MONDAY + WEEK, count=count,
                 expected=1.5, p_value=1e-6, bh_threshold=2e-5, gi_z=3.1,
                 neighbours=("E05004712",), protocol="herts-asb@1.0.0")


# -- planted clusters on the real Hertfordshire wards ----------------------------------------

CATEGORIES = ("asb", "burglary", "violence")
WARM_WEEKS = 12
TEST_WEEKS = 10
CLUSTERS_PER_WEEK = 4  # every other one spans a ward and one of its neighbours


def planted_rate(rate: float) -> float:
    """A spree: at least four times the usual rate, and at least fifteen extra events a week."""
    return max(4.0 * rate, rate + 15.0)


@dataclass(frozen=True)
class Simulation:
    alerts: list[Alert]
    planted: frozenset[tuple[str, str, int]]
    pairs: frozenset[tuple[str, str, str, int]]
    wards: int

    def weekly(self) -> dict[tuple[str, str, int], Alert]:
        """Weekly alerts in the test period keyed by (ward, category, week number)."""
        found = {}
        for a in self.alerts:
            week = (a.window_start - MONDAY) // WEEK
            if a.window == "week" and week >= WARM_WEEKS:
                found[(a.ward_code, a.category, week)] = a
        return found


def simulate(seed: int, *, plant: bool) -> Simulation:
    adjacency = herts_adjacency()
    wards = sorted(adjacency)
    rng = np.random.default_rng(seed)
    # Per ward x category weekly rate, drawn once: Gamma(2, 1) has mean 2 and a long right tail,
    # like real ward counts (a few busy town-centre wards, many quiet rural ones).
    rates = {(w, c): float(rng.gamma(2.0, 1.0)) for w in wards for c in CATEGORIES}
    planted: set[tuple[str, str, int]] = set()
    pairs: set[tuple[str, str, str, int]] = set()
    if plant:
        for week in range(WARM_WEEKS, WARM_WEEKS + TEST_WEEKS):
            for j in range(CLUSTERS_PER_WEEK):
                ward = wards[int(rng.integers(len(wards)))]
                category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
                planted.add((ward, category, week))
                if j % 2 == 0:
                    options = sorted(adjacency[ward])
                    partner = options[int(rng.integers(len(options)))]
                    planted.add((partner, category, week))
                    pairs.add((ward, partner, category, week))
    detector = HotspotDetector(adjacency=adjacency, districts=herts_districts())
    alerts: list[Alert] = []
    for week in range(WARM_WEEKS + TEST_WEEKS):
        events: list[tuple[int, str, str]] = []
        for (ward, category), rate in rates.items():
            lam = planted_rate(rate) if (ward, category, week) in planted else rate
            n = int(rng.poisson(lam))
            events.extend((int(s), ward, category)
                          for s in rng.integers(0, 7 * 86400, size=n).tolist())
        events.sort()
        for second, ward, category in events:
            alerts += detector.observe(ward, category,
                                       MONDAY + week * WEEK + timedelta(seconds=second))
    alerts += detector.advance(MONDAY + (WARM_WEEKS + TEST_WEEKS) * WEEK)
    return Simulation(alerts, frozenset(planted), frozenset(pairs), len(wards))


def ratio(part: Iterable[object], whole: Iterable[object]) -> float:
    whole_n = len(list(whole))
    return len(list(part)) / whole_n if whole_n else 0.0


@pytest.fixture(scope="module")
def planted() -> Simulation:
    return simulate(seed=11, plant=True)


class TestPlantedClusters:
    def test_given_planted_clusters_then_weekly_recall_and_precision_are_high(
            self, planted: Simulation) -> None:
        sim = planted
        found = sim.weekly()
        hits = [k for k in found if k in sim.planted]
        recall = ratio(set(hits), sim.planted)
        precision = ratio(hits, found)
        print(f"\nplanted weekly cells {len(sim.planted)}, weekly alerts {len(found)}, "
              f"recall {recall:.3f}, precision {precision:.3f}")
        figures = f"recall {recall:.3f} (need >= 0.9), precision {precision:.3f} (need >= 0.8)"
        assert recall >= 0.9, f"{figures}; missed {sorted(sim.planted - set(found))}"
        assert precision >= 0.8, f"{figures}; false {sorted(set(found) - sim.planted)}"

    def test_given_a_cluster_spanning_two_wards_then_each_alert_names_its_partner(
            self, planted: Simulation) -> None:
        sim = planted
        found = sim.weekly()
        both = [(a, b, c, w) for a, b, c, w in sim.pairs if (a, c, w) in found
                and (b, c, w) in found]
        named = [(a, b, c, w) for a, b, c, w in both
                 if b in found[(a, c, w)].neighbours and a in found[(b, c, w)].neighbours]
        gi = [found[(x, c, w)].gi_z or 0.0 for a, b, c, w in both for x in (a, b)]
        print(f"\ntwo-ward clusters detected in both wards {len(both)}/{len(sim.pairs)}, "
              f"partner named {len(named)}, gi_z min {min(gi):.2f} "
              f"median {sorted(gi)[len(gi) // 2]:.2f}")
        assert len(both) >= 0.8 * len(sim.pairs)
        assert named == both, f"partner missing from {sorted(set(both) - set(named))}"
        # 1.645 is the one-sided 5% point of the normal Gi* approximates.
        assert min(gi) > 1.645, f"Gi* of a two-ward cluster should be high, got {sorted(gi)}"
        assert sorted(gi)[len(gi) // 2] > 3.0, f"median Gi* too low: {sorted(gi)}"

    def test_given_background_only_then_false_alerts_per_100_ward_weeks_stay_below_0_25(
            self) -> None:
        sim = simulate(seed=12, plant=False)
        found = sim.weekly()
        ward_weeks = sim.wards * TEST_WEEKS
        rate = 100 * len(found) / ward_weeks
        by_kind = {k: sum(a.window == k for a in sim.alerts) for k in ("hour", "day", "week")}
        print(f"\nnull: {len(found)} weekly false alerts over {ward_weeks} ward-weeks "
              f"({len(CATEGORIES)} categories) = {rate:.3f} per 100 ward-weeks; "
              f"all alerts by window over the whole run {by_kind}")
        assert rate <= 0.25, f"{rate:.3f} false alerts per 100 ward-weeks (bound 0.25)"
