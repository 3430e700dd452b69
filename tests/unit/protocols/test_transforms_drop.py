from __future__ import annotations

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, get_transform
from tests.unit.protocols.transform_ctx import make_ctx, refusal

drop = get_transform("drop")


class TestDrop:
    @pytest.mark.parametrize("value", ["Aisha Rahman", None, 0, {"lat": 51.9, "lon": -0.2}])
    def test_given_any_value_then_it_is_dropped(self, value: object) -> None:
        assert drop.apply(value, {}, make_ctx()) is DROP

    def test_given_no_parameters_then_they_validate(self) -> None:
        assert refusal(drop, {}) is None

    def test_given_any_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'to' for transform 'drop'; "
                                              r"allowed: none"):
            drop.validate({"to": "ward"})
