from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, get_transform
from tests.unit.protocols.transform_ctx import make_ctx, refusal

age = get_transform("age_band")
EVENT = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)


def band(dob: object, bands: list[int] | None = None,
         event_time: datetime | None = EVENT) -> object:
    params = {} if bands is None else {"bands": bands}
    return age.apply(dob, params, make_ctx(event_time=event_time))


class TestDefaultBands:
    @pytest.mark.parametrize(("dob", "expected"), [
        (date(2024, 1, 1), "0-9"), (date(2010, 1, 1), "10-17"), (date(2006, 3, 5), "18-24"),
        (date(2006, 3, 6), "10-17"), (date(1990, 2, 1), "25-34"), (date(1980, 1, 1), "35-49"),
        (date(1970, 1, 1), "50-64"), (date(1959, 3, 5), "65+"), (date(1920, 1, 1), "65+"),
    ])
    def test_given_a_dob_then_the_age_at_the_event_is_banded(self, dob: date,
                                                             expected: str) -> None:
        assert band(dob) == expected

    def test_given_an_iso_string_then_it_is_read_as_a_date(self) -> None:
        assert band("2006-03-05") == "18-24"

    def test_given_a_datetime_then_its_date_is_used(self) -> None:
        assert band(datetime(2006, 3, 5, 23, 0)) == "18-24"

    def test_given_no_event_time_then_age_is_taken_today(self) -> None:
        assert band(date(1880, 1, 1), event_time=None) is DROP  # over 130 today
        assert band(date.today().replace(year=date.today().year - 30), event_time=None) == "25-34"


class TestCustomBands:
    def test_given_custom_bands_then_labels_follow_them(self) -> None:
        assert band(date(1990, 2, 1), [0, 18, 65]) == "18-64"
        assert band(date(1950, 2, 1), [0, 18, 65]) == "65+"

    def test_given_bands_not_starting_at_zero_then_younger_ages_get_a_band_from_zero(self) -> None:
        assert band(date(2014, 1, 1), [18, 65]) == "0-17"

    def test_given_a_one_year_band_then_it_is_labelled_with_that_age(self) -> None:
        assert band(date(2023, 6, 1), [0, 1, 5]) == "0"
        assert band(date(2023, 1, 1), [0, 1, 5]) == "1-4"


class TestInvalid:
    @pytest.mark.parametrize("dob", [None, "01/02/1990", "not a date", 1990, date(2025, 1, 1),
                                     date(1880, 1, 1)])
    def test_given_an_unusable_dob_then_the_field_is_dropped(self, dob: object) -> None:
        assert band(dob) is DROP


class TestValidate:
    def test_given_no_parameters_then_they_validate(self) -> None:
        assert refusal(age, {}) is None

    def test_given_ascending_bands_then_they_validate(self) -> None:
        assert refusal(age, {"bands": [0, 16, 18, 65]}) is None

    @pytest.mark.parametrize(("bands", "message"), [
        ("0,18,65", "must be a non-empty list of ages"),
        ([], "must be a non-empty list of ages"),
        ([0, 18.5, 65], "must be whole years"),
        ([0, True], "must be whole years"),
        ([-1, 18], r"ages must lie in 0..130"),
        ([0, 18, 200], r"ages must lie in 0..130"),
        ([0, 65, 18], "must be strictly ascending"),
        ([0, 18, 18, 65], "must be strictly ascending"),
    ])
    def test_given_bad_bands_then_error_raised(self, bands: object, message: str) -> None:
        with pytest.raises(ConfigError, match=message) as err:
            age.validate({"bands": bands})
        assert err.value.field == "bands"

    def test_given_an_unknown_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'band'.*allowed: bands"):
            age.validate({"band": [0, 18]})
