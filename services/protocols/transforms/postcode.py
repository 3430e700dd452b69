"""``postcode``: cut a full UK postcode down to its outward code or its sector.

Parameters: ``to`` (required) ``outward`` (``SG1 2AB`` -> ``SG1``, ~8,000 addresses on average) or
``sector`` (-> ``SG1 2``, ~3,000). A full postcode (~15 addresses) is never released.

Parsing is strict: case and spacing are forgiven, anything else that is not a well-formed postcode
(including a postcode embedded in an address) is dropped, never passed through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_choice,
    check_known,
    check_mapping,
)

TARGETS = ("outward", "sector")
# Outward: A9, A99, A9A, AA9, AA99, AA9A. Inward: digit + two letters, never C I K M O V.
OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
_FULL = re.compile(rf"^(?P<outward>{OUTWARD})(?P<inward>{INWARD})$")
_OUTWARD_ONLY = re.compile(rf"^{OUTWARD}$")


def parse(value: str) -> tuple[str, str | None] | None:
    """(outward, inward) of a postcode, inward None for an outward code alone; None if invalid."""
    compact = re.sub(r"\s+", "", value).upper()
    if compact == "GIR0AA":  # Girobank's historic non-geographic postcode
        return "GIR", "0AA"
    if m := _FULL.match(compact):
        return m["outward"], m["inward"]
    if _OUTWARD_ONLY.match(compact):
        return compact, None
    return None


class Postcode(Transform):
    name = "postcode"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("to",), self.name)
        check_choice(params, "to", TARGETS, required=True)

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        if not isinstance(value, str):
            return DROP
        parsed = parse(value)
        if parsed is None:
            return DROP
        outward, inward = parsed
        if params["to"] == "outward":
            return outward
        return DROP if inward is None else f"{outward} {inward[0]}"
