from __future__ import annotations

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import get_transform
from tests.unit.protocols.transform_ctx import make_ctx

keep = get_transform("keep")


class TestKeep:
    @pytest.mark.parametrize("value", ["violent-crime", None, 3, ["a"]])
    def test_given_any_value_then_it_is_returned_unchanged(self, value: object) -> None:
        assert keep.apply(value, {}, make_ctx()) == value

    def test_given_keep_then_it_tells_the_loader_it_must_not_touch_personal_fields(self) -> None:
        assert keep.applies_to_personal is False

    def test_given_any_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'mode' for transform 'keep'"):
            keep.validate({"mode": "scrub"})
