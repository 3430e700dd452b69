"""Helpers for the transforms' tests: ``make_ctx`` builds a TransformContext with harmless
defaults so each test states only what it is about."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.core.config.errors import ConfigError
from services.protocols.transforms import AreaInfo, TransformContext
from services.protocols.transforms.base import Transform

TEST_KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

STEVENAGE = AreaInfo(ward_code="E05012345", ward_name="Bedwell", district_code="E07000243",
                     district_name="Stevenage", ward_point=(51.90312, -0.19876))


def make_ctx(record: Mapping[str, Any] | None = None, *, field: str = "summary",
             personal: Iterable[str] | None = None, feed: str = "police",
             event_time: datetime | None = datetime(2024, 3, 5, 14, 30, tzinfo=UTC),
             area: AreaInfo | None = STEVENAGE, key: bytes | None = TEST_KEY,
             epoch: int | None = 3, protocol_id: str = "csp-herts@1") -> TransformContext:
    record = dict(record or {})
    return TransformContext(
        record=record, feed=feed, field=field,
        personal_fields=frozenset(record if personal is None else personal),
        event_time=event_time, area=area, pseudonym_key=key, key_epoch=epoch,
        protocol_id=protocol_id)


def refusal(transform: Transform, params: Mapping[str, Any]) -> str | None:
    """Why ``transform`` refuses ``params`` (the ConfigError's text), or None if it accepts
    them: ``assert refusal(t, params) is None`` shows the reason when it fails."""
    try:
        transform.validate(params)
    except ConfigError as exc:
        return str(exc)
    return None
