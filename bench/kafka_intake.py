"""Publishing as a Kafka-native partner: one JSON record per message on the partner's
``s115.inbound.<partner>`` topic, header ``feed``. There is no reply channel, so the hub record id
of each record is computed with the hub's record-id key (the benchmark runs the hub and holds its
state directory; a real partner never needs the id)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.workload import Item, PublishStats
from services.core.config.settings import Settings
from services.core.crypto.keys import MasterKey
from services.core.kafka.clients import make_producer
from services.core.kafka.topics import topics_for
from services.ingest.app import RECORD_ID_INFO
from services.ingest.records import hub_record_id


def record_id_key(state_dir: Path) -> bytes:
    return MasterKey.from_env_or_file(None, state_dir / "master.key").derive(RECORD_ID_INFO)


async def publish(settings: Settings, items: list[Item], key: bytes, *, rate: float | None,
                  chunk: int = 1000, on_progress: Callable[[int], None] | None = None
                  ) -> PublishStats:
    """Send ``items`` at ``rate`` records/s (None: as fast as the broker acknowledges), waiting for
    the broker's acknowledgement of each chunk before counting it published."""
    topics = topics_for(settings)
    stats = PublishStats()
    producer = make_producer(settings)
    await producer.start()
    stats.started = time.time()
    t0 = time.monotonic()
    step = chunk if rate is None else max(1, int(rate / 50))  # paced in 20 ms steps
    try:
        for i in range(0, len(items), step):
            part = items[i:i + step]
            if rate is not None and (lag := t0 + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(lag)
            now = time.time()
            futs: list[Any] = []
            for it in part:
                futs.append(await producer.send(
                    topics.inbound(it.partner), it.line, key=it.source_id.encode(),
                    headers=[("feed", it.feed.encode())]))
                rid = hub_record_id(key, it.partner, it.source_id)
                stats.accepted[it.source_id] = rid
                stats.sent_at[rid] = now
            await asyncio.gather(*futs)
            if on_progress:
                on_progress(i + len(part))
    finally:
        await producer.stop()
    stats.finished = time.time()
    return stats
