from __future__ import annotations

from datetime import date

import pytest

from services.core.errors import ConfigError
from services.depersonalise.transforms import DROP, get_transform
from tests.unit.depersonalise import make_ctx

ft = get_transform("free_text")
RECORD = {
    "victim_name": "Aisha Rahman", "victim_dob": date(1990, 2, 1),
    "address": "14 Fairlands Way, Stevenage, SG1 4QR",
    "summary": "Aisha Rahman (dob 01/02/1990) reported her ex at 14 Fairlands Way.",
}


class TestModes:
    def test_given_no_mode_then_the_text_is_dropped(self) -> None:
        assert ft.apply(RECORD["summary"], {}, make_ctx(RECORD)) is DROP

    def test_given_mode_drop_then_the_text_is_dropped(self) -> None:
        assert ft.apply(RECORD["summary"], {"mode": "drop"}, make_ctx(RECORD)) is DROP

    def test_given_mode_scrub_then_the_records_own_values_are_replaced(self) -> None:
        out = ft.apply(RECORD["summary"], {"mode": "scrub"}, make_ctx(RECORD))
        assert out == "[NAME] (dob [DATE]) reported her ex at [ADDRESS]."

    def test_given_scrub_on_a_name_field_then_the_name_itself_is_replaced(self) -> None:
        ctx = make_ctx(RECORD, field="victim_name")
        assert ft.apply("Aisha Rahman", {"mode": "scrub"}, ctx) == "[NAME]"

    @pytest.mark.parametrize("value", [None, 42, ["text"]])
    def test_given_something_that_is_not_text_then_the_field_is_dropped(
            self, value: object) -> None:
        assert ft.apply(value, {"mode": "scrub"}, make_ctx(RECORD)) is DROP

    def test_given_no_personal_fields_then_generic_patterns_still_apply(self) -> None:
        out = ft.apply("ring 07700 900123", {"mode": "scrub"}, make_ctx(RECORD, personal=()))
        assert out == "ring [PHONE]"


class TestValidate:
    @pytest.mark.parametrize("params", [{}, {"mode": "drop"}, {"mode": "scrub"}])
    def test_given_valid_parameters_then_they_validate(self, params: dict[str, str]) -> None:
        ft.validate(params)

    @pytest.mark.parametrize("mode", ["redact", "keep", "", None, True])
    def test_given_an_unknown_mode_then_error_raised(self, mode: object) -> None:
        with pytest.raises(ConfigError, match=r"must be one of drop, scrub; got .*\(field mode\)"):
            ft.validate({"mode": mode})

    def test_given_an_unknown_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'patterns'.*allowed: mode"):
            ft.validate({"mode": "scrub", "patterns": ["nhs"]})
