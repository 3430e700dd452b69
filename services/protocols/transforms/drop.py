"""``drop``: the field never leaves the hub. The safe choice for anything a group does not need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_known,
    check_mapping,
)


class Drop(Transform):
    name = "drop"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), (), self.name)

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        return DROP
