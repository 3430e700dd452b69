"""The map's count-against-expected per ward (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.router.web.tally import WardTally, band_of

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: week windows start here
NOW = MONDAY + timedelta(days=60)


def _week(tally: WardTally, ward: str, week: int, n: int) -> None:
    for i in range(n):
        tally.add(ward, MONDAY + timedelta(weeks=week, hours=i), NOW)


def test_no_history_means_no_baseline() -> None:
    t = WardTally()
    assert t.status("W1").band == "no-baseline"
    _week(t, "W1", 0, 3)
    st = t.status("W1")
    assert (st.count, st.expected, st.band) == (3, None, "no-baseline")


def test_expected_is_the_ewma_of_completed_weeks_including_empty_ones() -> None:
    t = WardTally()
    _week(t, "W1", 0, 4)
    _week(t, "W1", 1, 4)
    _week(t, "W2", 1, 1)
    _week(t, "W1", 2, 12)
    w1, w2 = t.status("W1"), t.status("W2")
    assert w1.count == 12
    assert w1.expected == pytest.approx(4.0)
    assert w1.band == "well-above"
    # W2 had 0 then 1 in the two completed weeks: bias-corrected EWMA sits between, nearer 1.
    assert w2.count == 0
    assert 0.5 < (w2.expected or 0) < 1.0
    assert t.window() == (MONDAY + timedelta(weeks=2), MONDAY + timedelta(weeks=3))


def test_current_week_follows_event_time_and_a_future_date_is_clamped() -> None:
    t = WardTally()
    _week(t, "W1", 0, 2)
    t.add("W1", NOW + timedelta(days=400), NOW)
    start, _ = t.window() or (None, None)
    assert start is not None
    assert start <= NOW < start + timedelta(weeks=1)


def test_state_is_bounded_by_wards_and_horizon_not_records() -> None:
    t = WardTally(horizon_weeks=4)
    for week in range(0, 8):
        for ward in ("W1", "W2", "W3"):
            _week(t, ward, week, 20)
    assert t.seen == 8 * 3 * 20
    assert t.state_size() <= 3 * (4 + 1)
    t.add("W1", MONDAY, NOW)  # a record older than the horizon is counted as dropped
    assert t.dropped_old == 1


@pytest.mark.parametrize(("count", "expected", "band"), [
    (0, 4.0, "below"), (4, 4.0, "as-expected"), (8, 4.0, "above"), (12, 4.0, "well-above"),
    (1, 0.0, "above"), (0, 0.0, "as-expected"), (3, None, "no-baseline")])
def test_bands(count: int, expected: float | None, band: str) -> None:
    assert band_of(count, expected) == band


def test_small_counts_are_suppressed_for_display_but_zero_is_zero() -> None:
    t = WardTally()
    _week(t, "W1", 0, 3)
    assert t.status("W1").public_count(10) == "<10"
    assert t.status("W2").public_count(10) == "0"
    _week(t, "W1", 0, 20)
    assert t.status("W1").public_count(10) == "23"
