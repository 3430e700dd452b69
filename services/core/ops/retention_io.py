"""Read and set topic retention on the broker (kafka-python admin). The plan is retention.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from services.core.config.settings import Settings
from services.core.ops.retention import TopicRetention


def _admin(settings: Settings) -> Any:
    from kafka.admin import KafkaAdminClient

    from services.core.kafka.clients import kafka_python_common

    return KafkaAdminClient(**kafka_python_common(settings), client_id="s115hub-retention")


def _value(entry: Any) -> str | None:
    if isinstance(entry, dict):
        v = entry.get("value", entry.get("config_value"))
        return None if v is None else str(v)
    return None if entry is None else str(entry)


def with_current(settings: Settings, rows: Sequence[TopicRetention]) -> list[TopicRetention]:
    """``rows`` with ``current_ms`` as the broker reports it (None when it does not say: the
    embedded tansu broker reports no topic configs)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        present = [r for r in rows if r.topic in existing]
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, r.topic) for r in present],
            config_filter="all") if present else {}
    finally:
        admin.close()
    topics = found.get("topic", {}) if isinstance(found, dict) else {}
    out = []
    for r in rows:
        raw = _value((topics.get(r.topic) or {}).get("retention.ms"))
        out.append(replace(r, current_ms=int(raw) if raw not in (None, "") else None))
    return out


def set_retention(settings: Settings, rows: Sequence[TopicRetention]) -> list[TopicRetention]:
    """Set ``retention.ms`` on every existing topic of ``rows`` whose setting differs; return the
    rows changed (with the previous value in ``current_ms``)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    todo = [r for r in rows if r.change_needed]
    if not todo:
        return []
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        todo = [r for r in todo if r.topic in existing]
        if todo:
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, r.topic,
                                                configs={"retention.ms": str(r.ms)})
                                 for r in todo], raise_on_unknown=False)
    finally:
        admin.close()
    return todo
