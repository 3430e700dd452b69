"""``time`` (module named timebucket so it does not shadow the stdlib): coarsen an event time to the
start of its period, in UTC.

Parameters: ``to`` (required) one of ``hour`` -> ``2024-03-05T14:00:00Z``, ``day`` ->
``2024-03-05``, ``week`` -> the Monday, ``2024-03-04``, ``month`` -> ``2024-03``.

Input: a datetime, a date (not for ``hour``: that would invent a time) or an ISO 8601 string.
Naive datetimes are taken as UTC, which is what the feeds send. Buckets are UTC, so an incident at
00:30 BST falls in the previous UTC day.

This transform is for event times only: ``applies_to_personal`` is False so the loader refuses it
on a date of birth (``to: day`` would release the date itself; use ``age_band``), and ``apply``
drops a personal field in case a caller skips the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_choice,
    check_known,
    check_mapping,
)

PERIODS = ("hour", "day", "week", "month")


def parse_when(value: Any) -> datetime | date | None:
    """A UTC datetime, a date, or None when the value is not a time."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return value
    return None


def bucket(when: datetime | date, period: str) -> str | None:
    if period == "hour":
        if not isinstance(when, datetime):
            return None
        return when.strftime("%Y-%m-%dT%H:00:00Z")
    day = when.date() if isinstance(when, datetime) else when
    if period == "day":
        return day.isoformat()
    if period == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    return f"{day.year:04d}-{day.month:02d}"


class TimeBucket(Transform):
    name = "time"
    applies_to_personal = False

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("to",), self.name)
        check_choice(params, "to", PERIODS, required=True)

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        if ctx.field in ctx.personal_fields:
            return DROP
        when = parse_when(value)
        if when is None:
            return DROP
        out = bucket(when, params["to"])
        return DROP if out is None else out
