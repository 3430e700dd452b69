"""The one reading of a record's event time (schemas/event_time.py) that depersonalise, hot-spot
counting and the group page share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.event_time import EventTime, event_time

ARRIVAL = "2026-03-02T23:10:00Z"


def test_given_an_offset_or_none_then_the_time_is_utc() -> None:
    assert event_time("police", {"occurred_at": "2026-03-02T10:00:00+01:00"}) == EventTime(
        datetime(2026, 3, 2, 9, tzinfo=UTC), "hour")
    assert event_time("police", {"occurred_at": "2026-03-02T10:00:00"}) == EventTime(
        datetime(2026, 3, 2, 10, tzinfo=UTC), "hour")
    local = datetime(2026, 3, 2, 10, tzinfo=timezone(timedelta(hours=1)))
    got = event_time("police", {"occurred_at": local})
    assert got is not None
    assert got.when.tzinfo is UTC
    assert got.when.hour == 9


def test_given_a_date_only_then_its_precision_is_the_week() -> None:
    assert event_time("fire", {"occurred_at": "2026-03-02"}) == EventTime(
        datetime(2026, 3, 2, tzinfo=UTC), "week")


def test_given_each_feed_then_only_its_own_field_is_read() -> None:
    when = "2026-03-04T08:00:00Z"
    assert event_time("council", {"reported_at": when}) is not None
    assert event_time("police", {"reported_at": when}) is None
    assert event_time("council", {"occurred_at": when}) is None


def test_given_a_health_record_without_assault_time_then_arrival_is_its_time_but_not_counted(
) -> None:
    got = event_time("health", {"arrival_at": ARRIVAL})
    assert got is not None
    assert got.when == datetime(2026, 3, 2, 23, 10, tzinfo=UTC)
    assert event_time("health", {"arrival_at": ARRIVAL}, counted=True) is None
    both = {"assault_at": "2026-03-02T21:00:00Z", "arrival_at": ARRIVAL}
    assert event_time("health", both, counted=True) == EventTime(
        datetime(2026, 3, 2, 21, tzinfo=UTC), "hour")


def test_given_a_time_stated_to_the_month_then_it_is_read_but_not_counted() -> None:
    rec = {"occurred_at": "2018-01-01T00:00:00Z", "time_precision": "month"}
    assert event_time("police", rec) == EventTime(datetime(2018, 1, 1, tzinfo=UTC), "hour")
    assert event_time("police", rec, counted=True) is None


@pytest.mark.parametrize("value", ["2026-03", "soon", "2026-02-30", "2026-02-30T10:00Z", 12345,
                                   None])
def test_given_no_readable_date_then_there_is_none(value: object) -> None:
    assert event_time("police", {"occurred_at": value}) is None
