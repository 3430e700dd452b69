"""``free_text``: free text is personal until proven otherwise.

Parameters: ``mode`` (optional) ``drop`` (default: the text never leaves the hub) or ``scrub``.

``scrub`` is record-aware: it removes the record's own personal values wherever they appear (names
and each name token, reversed "Smith, John" forms, addresses and their parts, phones and NHS
numbers whatever the spacing, emails, dates of birth in common formats), then generic UK patterns
(NHS numbers with a valid check digit, NI numbers, phones, emails, postcodes, vehicle
registrations, dates, street addresses, titled names). Each becomes a typed placeholder such as
``[NAME]`` or ``[NHS_NUMBER]``. See ``free_text_patterns`` for what is and is not caught.

The record-aware half relies on ``ctx.personal_fields``: an empty set leaves only the generic
patterns, so the engine must always pass the feed's personal fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.depersonalise.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_choice,
    check_known,
    check_mapping,
)
from services.depersonalise.transforms.free_text_patterns import scrub

MODES = ("drop", "scrub")


class FreeText(Transform):
    name = "free_text"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("mode",), self.name)
        check_choice(params, "mode", MODES, required=False)

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        if params.get("mode", "drop") == "drop" or not isinstance(value, str):
            return DROP
        return scrub(value, ctx.record, ctx.personal_fields, ctx.field)
