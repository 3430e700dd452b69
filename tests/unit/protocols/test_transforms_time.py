from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, get_transform
from tests.unit.protocols.transform_ctx import make_ctx, refusal

time_ = get_transform("time")
WHEN = datetime(2024, 3, 7, 14, 35, 12, tzinfo=UTC)  # a Thursday


def bucket(value: object, to: str) -> object:
    return time_.apply(value, {"to": to}, make_ctx(field="occurred_at", personal=()))


class TestBuckets:
    @pytest.mark.parametrize(("to", "expected"), [
        ("hour", "2024-03-07T14:00:00Z"), ("day", "2024-03-07"), ("week", "2024-03-04"),
        ("month", "2024-03"),
    ])
    def test_given_a_datetime_then_the_period_start_is_released(self, to: str,
                                                                expected: str) -> None:
        assert bucket(WHEN, to) == expected

    def test_given_an_iso_string_then_it_is_bucketed_like_a_datetime(self) -> None:
        assert bucket("2024-03-07T14:35:12Z", "hour") == "2024-03-07T14:00:00Z"

    def test_given_an_offset_time_then_the_bucket_is_in_utc(self) -> None:
        bst = timezone(timedelta(hours=1))
        assert bucket(datetime(2024, 6, 1, 0, 30, tzinfo=bst), "day") == "2024-05-31"

    def test_given_a_naive_datetime_then_it_is_taken_as_utc(self) -> None:
        assert bucket(datetime(2024, 3, 7, 23, 59), "hour") == "2024-03-07T23:00:00Z"

    def test_given_a_sunday_then_the_week_starts_on_the_monday_before(self) -> None:
        assert bucket(date(2024, 3, 10), "week") == "2024-03-04"

    def test_given_a_monday_then_the_week_starts_that_day(self) -> None:
        assert bucket("2024-03-04", "week") == "2024-03-04"

    def test_given_a_date_and_to_hour_then_the_field_is_dropped_rather_than_invented(self) -> None:
        assert bucket(date(2024, 3, 7), "hour") is DROP

    @pytest.mark.parametrize("value", [None, "yesterday", "2024-13-01", 1709821000, ""])
    def test_given_something_that_is_not_a_time_then_the_field_is_dropped(
            self, value: object) -> None:
        assert bucket(value, "day") is DROP

    def test_given_a_personal_field_then_it_is_dropped_even_without_the_loader(self) -> None:
        ctx = make_ctx({"victim_dob": date(1990, 2, 1)}, field="victim_dob")
        assert time_.apply(date(1990, 2, 1), {"to": "day"}, ctx) is DROP

    def test_given_time_then_it_tells_the_loader_it_must_not_touch_personal_fields(self) -> None:
        assert time_.applies_to_personal is False


class TestValidate:
    @pytest.mark.parametrize("to", ["hour", "day", "week", "month"])
    def test_given_a_known_period_then_it_validates(self, to: str) -> None:
        assert refusal(time_, {"to": to}) is None

    def test_given_no_to_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match="parameter 'to' is required; one of hour, day"):
            time_.validate({})

    @pytest.mark.parametrize("to", ["minute", "year", "Month", ["day"]])
    def test_given_an_unknown_period_then_error_raised(self, to: object) -> None:
        with pytest.raises(ConfigError, match=r"must be one of hour, day, week, month; got "):
            time_.validate({"to": to})

    def test_given_an_unknown_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'tz'.*allowed: to"):
            time_.validate({"to": "day", "tz": "Europe/London"})
