from __future__ import annotations

import copy
import pickle

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, REGISTRY, Transform, get_transform
from tests.unit.protocols.transform_ctx import TEST_KEY, make_ctx

EXPECTED = {"drop", "keep", "pseudonymise", "location", "time", "age_band", "postcode", "free_text"}


class TestRegistry:
    def test_given_the_registry_then_it_names_every_transform_by_its_protocol_name(self) -> None:
        assert set(REGISTRY) == EXPECTED
        assert all(isinstance(t, Transform) and REGISTRY[t.name] is t for t in REGISTRY.values())

    def test_given_a_known_name_then_get_transform_returns_it(self) -> None:
        assert get_transform("postcode") is REGISTRY["postcode"]

    def test_given_an_unknown_name_then_error_lists_the_known_ones(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown transform 'hash'; known transforms: "
                                              r"age_band, drop, free_text, keep, location"):
            get_transform("hash")

    def test_given_a_name_that_is_not_a_string_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match="unknown transform"):
            get_transform(["drop"])  # type: ignore[arg-type]

    def test_given_the_registry_then_only_keep_and_time_refuse_personal_fields(self) -> None:
        refusing = {name for name, t in REGISTRY.items() if not t.applies_to_personal}
        assert refusing == {"keep", "time"}


class TestCommonParameterChecks:
    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_given_parameters_that_are_not_a_mapping_then_error_raised(self, name: str) -> None:
        with pytest.raises(ConfigError, match="parameters must be a mapping, got list"):
            get_transform(name).validate(["to", "ward"])  # type: ignore[arg-type]

    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_given_an_unknown_parameter_then_error_names_it_and_the_allowed_ones(
            self, name: str) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'colour' .* allowed: ") as err:
            get_transform(name).validate({"colour": "red"})
        assert err.value.field == "colour"


class TestDropSentinel:
    def test_given_drop_copied_or_pickled_then_it_is_still_the_same_object(self) -> None:
        assert copy.deepcopy(DROP) is DROP
        assert pickle.loads(pickle.dumps(DROP)) is DROP
        assert repr(DROP) == "DROP"


class TestContext:
    def test_given_a_context_then_its_repr_shows_neither_the_key_nor_the_record(self) -> None:
        ctx = make_ctx({"victim_name": "Aisha Rahman"})
        assert "Aisha" not in repr(ctx)
        assert repr(TEST_KEY) not in repr(ctx)
