"""Kafka glue for the audit trail, shared by the router's chainer and the CLI: read the stored
chain, publish facts. Everything that decides anything is in audit_log / audit_facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from services.core.audit.facts import encode_fact, fact_key
from services.core.audit.log import StoredChain
from services.core.config.settings import Settings
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for


async def read_chain(settings: Settings,
                     progress: Callable[[int], None] | None = None) -> StoredChain:
    """Everything on the audit topic, in order (drained past tansu's under-reported end)."""
    out = StoredChain()
    n = 0
    async for msg in scan(settings, topics_for(settings).audit):
        out.add(msg.key, msg.value, msg.offset)
        n += 1
        if progress is not None and n % 10_000 == 0:
            progress(n)
    return out


def publish_facts(settings: Settings, facts: Iterable[Mapping[str, Any]]) -> int:
    """Publish facts synchronously (CLI): each acknowledged by every in-sync replica."""
    from kafka import KafkaProducer

    from services.core.kafka.clients import kafka_python_common

    facts = list(facts)
    if not facts:
        return 0
    producer = KafkaProducer(**kafka_python_common(settings), acks="all")
    # Config facts travel on the officer topic: the chainer refuses kind=config from any other.
    t = topics_for(settings)
    try:
        for fact in facts:
            topic = t.audit_officer if fact.get("kind") == "config" else t.audit_facts
            producer.send(topic, key=fact_key(fact), value=encode_fact(fact)).get(timeout=30)
    finally:
        producer.close()
    return len(facts)
