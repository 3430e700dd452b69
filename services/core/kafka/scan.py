"""Read a topic from the beginning to its current end (no consumer group). Used to seed ledgers
on start-up, by the config follower, the CLI and tests.

The end offset a broker reports is not trusted on its own: the embedded broker (tansu) answers
ListOffsets with the base offset of the last record batch plus one, so a reader that stops there
misses the rest of that batch (measured: 15,000 acked records, end offsets summing to 14,080).
A partition counts as drained once the reader is at or past the reported end *and* further
fetches come back empty. On Apache Kafka this costs two empty fetches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from services.core.config.settings import Settings
from services.core.kafka.clients import make_consumer, topic_partitions

_EMPTY_ROUNDS = 2


async def drain(consumer: Any, tps: Iterable[Any], timeout_ms: int = 300) -> AsyncIterator[Any]:
    """Yield every message on ``tps`` from the consumer's current positions to the end."""
    tps = list(tps)
    ends = await consumer.end_offsets(tps)
    empty = dict.fromkeys(tps, 0)
    pending = set(tps)
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=timeout_ms, max_records=5000)
        for msgs in batch.values():
            for msg in msgs:
                yield msg
        for tp in list(pending):
            empty[tp] = 0 if batch.get(tp) else empty[tp] + 1
            if await consumer.position(tp) >= ends[tp] and empty[tp] >= _EMPTY_ROUNDS:
                pending.discard(tp)


async def scan(settings: Settings, topic: str) -> AsyncIterator[Any]:
    from aiokafka import TopicPartition

    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # otherwise "Unclosed AIOKafkaConsumer" after the error line
        raise
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async for msg in drain(consumer, tps):
            yield msg
    finally:
        await consumer.stop()
