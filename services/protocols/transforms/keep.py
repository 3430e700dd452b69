"""``keep``: release the value unchanged. Only for fields that are not personal.

``applies_to_personal`` is False so the protocol loader can refuse ``keep`` on a personal field;
this module cannot see the feed schema, so that check lives there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.protocols.transforms.base import (
    Transform,
    TransformContext,
    check_known,
    check_mapping,
)


class Keep(Transform):
    name = "keep"
    applies_to_personal = False

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), (), self.name)

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        return value
