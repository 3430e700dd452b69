"""Read a topic from the beginning to its current end (no consumer group). Used to seed ledgers
on start-up, by the CLI and by tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.core.kafka import make_consumer
from services.core.settings import Settings


async def scan(settings: Settings, topic: str, timeout_ms: int = 1000) -> AsyncIterator[Any]:
    from aiokafka import TopicPartition

    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata so partitions_for_topic knows the topic
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=timeout_ms, max_records=5000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if msg.offset < ends[tp]:
                        yield msg
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
