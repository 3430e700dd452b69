"""``age_band``: turn a date of birth into an age band at the time of the event.

Parameters: ``bands`` (optional) ascending whole-year lower bounds, default
``[0, 10, 18, 25, 35, 50, 65]`` giving ``0-9``, ``10-17``, ``18-24``, ``25-34``, ``35-49``,
``50-64``, ``65+``. Ages under the first bound fall in ``0-<first-1>``.

The age is taken at ``ctx.event_time`` (today, UTC, when the record has none) so a band describes
the person when the incident happened. A date of birth that cannot be read, lies after the event
or gives an age over 130 is dropped rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

from services.core.config.errors import ConfigError
from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_known,
    check_mapping,
    is_int,
)

DEFAULT_BANDS = (0, 10, 18, 25, 35, 50, 65)
MAX_AGE = 130


def parse_dob(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def age_on(dob: date, day: date) -> int:
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def band_label(age: int, bands: tuple[int, ...]) -> str:
    bounds = bands if bands[0] == 0 else (0, *bands)
    for low, high in pairwise(bounds):
        if low <= age < high:
            return f"{low}-{high - 1}" if high - 1 > low else str(low)
    return f"{bounds[-1]}+"


class AgeBand(Transform):
    name = "age_band"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("bands",), self.name)
        if "bands" not in params:
            return
        bands = params["bands"]
        if not isinstance(bands, list) or not bands:
            raise ConfigError("must be a non-empty list of ages", field="bands")
        if not all(is_int(b) for b in bands):
            raise ConfigError(f"must be whole years; got {bands!r}", field="bands")
        if bands[0] < 0 or bands[-1] > MAX_AGE:
            raise ConfigError(f"ages must lie in 0..{MAX_AGE}; got {bands!r}", field="bands")
        if any(b >= c for b, c in pairwise(bands)):
            raise ConfigError(f"must be strictly ascending; got {bands!r}", field="bands")

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        dob = parse_dob(value)
        if dob is None:
            return DROP
        when = ctx.event_time or datetime.now(UTC)
        age = age_on(dob, when.date())
        if age < 0 or age > MAX_AGE:
            return DROP
        return band_label(age, tuple(params.get("bands", DEFAULT_BANDS)))
