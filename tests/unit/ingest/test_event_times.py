"""Event times are validated at ingest: a time zone is required, a number is not a time, and a
time in the future (beyond the allowed clock skew) or before the plausible floor is refused, each
with a rejection naming the field and the reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.core.errors import RecordRejected
from services.ingest.validation import TimeWindow, validate_record

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
WINDOW = TimeWindow(NOW, timedelta(minutes=5), date(2000, 1, 1))


def police(occurred_at: object) -> dict[str, object]:
    return {"source_id": "P1", "category": "burglary", "occurred_at": occurred_at}


def problems(feed: str, record: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(RecordRejected) as exc:
        validate_record(feed, record, WINDOW)
    return exc.value.problems


@pytest.mark.parametrize("value", [12345, 1.7e9, "12345", True])
def test_given_a_number_as_occurred_at_then_it_is_refused_not_read_as_1970(value: object) -> None:
    [(ptr, why)] = problems("police", police(value))
    assert ptr == "/occurred_at"
    assert "not a number" in why


def test_given_a_time_without_a_zone_then_it_is_refused_not_read_as_utc() -> None:
    [(ptr, why)] = problems("police", police("2026-11-01T21:30:00"))
    assert ptr == "/occurred_at"
    assert "timezone" in why.lower()


def test_given_a_time_next_year_then_it_is_refused_as_in_the_future() -> None:
    [(ptr, why)] = problems("police", police("2027-01-15T10:00:00Z"))
    assert ptr == "/occurred_at"
    assert "in the future" in why
    assert "300 s" in why


def test_given_a_time_within_the_allowed_skew_then_it_is_accepted() -> None:
    ahead = (NOW + timedelta(minutes=4)).isoformat()
    assert validate_record("police", police(ahead), WINDOW).occurred_at  # type: ignore[attr-defined]


def test_given_a_time_before_the_floor_then_it_is_refused_as_implausible() -> None:
    [(ptr, why)] = problems("police", police("1999-12-31T23:59:00Z"))
    assert ptr == "/occurred_at"
    assert "before 2000-01-01" in why


def test_given_a_health_record_then_every_time_field_is_checked() -> None:
    record: dict[str, object] = {"source_id": "H1", "arrival_at": "2030-01-01T00:00:00Z",
              "assault_at": "1990-01-01T00:00:00+01:00", "assault_method": "knife-or-sharp",
              "location_type": "public-place"}
    found = dict(problems("health", record))
    assert set(found) == {"/arrival_at", "/assault_at"}


def test_given_an_offset_time_then_it_is_compared_as_the_instant_it_names() -> None:
    # 12:03 at +01:00 is 11:03 UTC: in the past, so accepted.
    assert validate_record("police", police("2026-11-29T12:03:00+01:00"), WINDOW)
