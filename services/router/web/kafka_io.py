"""The web sub-app's only Kafka code: reading a group's own topics without a consumer group.

No consumer group, because a browser or a script on the far side of HTTP is not a member of
anything: each stream assigns the partitions itself, and its position travels in the SSE event
id (positions.py), so nothing is committed and nothing needs cleaning up after a client leaves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from services.core.config.settings import Settings
from services.core.kafka.clients import make_consumer, topic_partitions
from services.core.kafka.scan import drain
from services.router.web.positions import Position


@dataclass(frozen=True)
class Event:
    kind: str  # "d" (delivery) or "h" (hot-spot alert)
    value: bytes
    positions: dict[Position, int]


async def _assign(consumer: Any, topics: Mapping[str, str]) -> dict[Any, str]:
    from aiokafka import TopicPartition

    tps: dict[Any, str] = {}
    for kind, topic in topics.items():
        for p in await topic_partitions(consumer, topic):
            tps[TopicPartition(topic, p)] = kind
    if tps:
        consumer.assign(list(tps))
    return tps


async def follow(settings: Settings, topics: Mapping[str, str], resume: Mapping[Position, int],
                 *, from_end: bool, idle_ms: int = 1000) -> AsyncIterator[Event | None]:
    """Messages of ``topics`` ({kind: topic}) as they arrive, forever; None after each idle
    ``idle_ms`` so the caller can send keep-alives and notice a departed client.

    A partition named in ``resume`` starts at that offset; the rest at the end (``from_end``) or
    the beginning. "The end" is the broker's reported end offset, which the embedded broker
    under-reports (services/core/kafka/scan.py), so a fresh ``from=end`` stream there may replay
    the tail of the last batch: more, never fewer, records than asked for.
    """
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _assign(consumer, topics)
        for tp, kind in tps.items():
            pos = resume.get((kind, tp.partition))
            if pos is not None:
                consumer.seek(tp, pos)
            elif from_end:
                await consumer.seek_to_end(tp)
            else:
                await consumer.seek_to_beginning(tp)
        positions = {(kind, tp.partition): await consumer.position(tp) for tp, kind in tps.items()}
        while True:
            if not tps:  # the group's topics are not provisioned yet: nothing can arrive
                await asyncio.sleep(idle_ms / 1000)
                yield None
                continue
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=500)
            if not batch:
                yield None
                continue
            for tp, msgs in batch.items():
                kind = tps[tp]
                for msg in msgs:
                    positions[(kind, tp.partition)] = msg.offset + 1
                    yield Event(kind, msg.value, dict(positions))
    finally:
        await consumer.stop()


async def catch_up(settings: Settings, topic: str, positions: Mapping[int, int]
                   ) -> tuple[list[bytes], dict[int, int]]:
    """Every value on ``topic`` after ``positions`` ({partition: next offset}; a partition not
    named starts at the beginning), and the positions after them."""
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = list(await _assign(consumer, {"d": topic}))
        if not tps:
            return [], dict(positions)
        for tp in tps:
            if tp.partition in positions:
                consumer.seek(tp, positions[tp.partition])
            else:
                await consumer.seek_to_beginning(tp)
        values = [m.value async for m in drain(consumer, tps, timeout_ms=100)]
        return values, {tp.partition: await consumer.position(tp) for tp in tps}
    finally:
        await consumer.stop()
