"""``s115hub up --demo``: a synthetic county publishing over HTTP, and a live summary of what
each tasking group receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import httpx

from demo.cluster import LocalHub
from demo.synthetic import Generator
from schemas.feeds import FEED_NAMES
from services.core.areas import AreaIndex
from services.core.config.settings import Settings
from services.core.kafka.clients import make_consumer
from services.core.kafka.topics import topics_for


async def publish_synthetic(hub: LocalHub, rate: float, stop: asyncio.Event,
                            sent: Counter[str], seed: int = 115) -> None:
    """Post batches of synthetic records, one NDJSON request per partner and feed per tick."""
    assert hub.settings is not None
    assert hub.boot is not None
    gen = Generator(AreaIndex.load(hub.settings.boundaries_dir), seed=seed)
    stream = gen.stream()
    tick = 1.0
    async with httpx.AsyncClient(base_url=hub.url("ingest"), timeout=30) as client:
        while not stop.is_set():
            t0 = time.monotonic()
            batches: dict[tuple[str, str], list[str]] = defaultdict(list)
            for _ in range(max(1, int(rate * tick))):
                feed, partner, _ward, rec = next(stream)
                batches[(partner, feed)].append(json.dumps(rec))
            for (partner, feed), lines in batches.items():
                r = await client.post(f"/v1/feeds/{feed}/ndjson", content="\n".join(lines),
                                      headers={"X-API-Key": hub.boot.api_keys[partner],
                                               "Content-Type": "application/x-ndjson"})
                if r.status_code == 200:
                    sent[feed] += r.json()["counts"]["accepted"]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, tick - (time.monotonic() - t0)))


async def follow_deliveries(settings: Settings, groups: list[str], stop: asyncio.Event,
                            counts: dict[str, Counter[str]],
                            on_record: Callable[[str, dict[str, Any]], None] | None = None
                            ) -> None:
    topics = topics_for(settings)
    consumer = make_consumer(settings, *[topics.deliver(g) for g in groups], group_id=None)
    await consumer.start()
    prefix = f"{settings.topic_prefix}.deliver."
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batch.items():
                group = tp.topic.removeprefix(prefix)
                for msg in msgs:
                    rec = json.loads(msg.value)
                    counts[group][rec["feed"]] += 1
                    if on_record:
                        on_record(group, rec)
    finally:
        await consumer.stop()


def summary_table(counts: dict[str, Counter[str]], sent: Counter[str], elapsed: float) -> str:
    feeds = FEED_NAMES
    lines = [f"-- after {elapsed:5.0f}s: published {sum(sent.values())} "
             f"({', '.join(f'{f} {sent[f]}' for f in feeds)})",
             f"   {'tasking group':<22}" + "".join(f"{f:>9}" for f in feeds) + f"{'total':>9}"]
    for group in sorted(counts):
        c = counts[group]
        lines.append(f"   {group:<22}" + "".join(f"{c[f]:>9}" for f in feeds)
                     + f"{sum(c.values()):>9}")
    return "\n".join(lines)


async def run_demo(hub: LocalHub, *, rate: float, duration: float | None,
                   echo: Callable[[str], None], every: float = 5.0) -> dict[str, Counter[str]]:
    assert hub.settings is not None
    assert hub.boot is not None
    groups = [g.id for g in hub.boot.county.groups]
    counts: dict[str, Counter[str]] = {g: Counter() for g in groups}
    sent: Counter[str] = Counter()
    stop = asyncio.Event()
    example: dict[str, Any] = {}

    def keep_example(group: str, rec: dict[str, Any]) -> None:
        example.setdefault("rec", (group, rec))

    tasks = [asyncio.create_task(publish_synthetic(hub, rate, stop, sent)),
             asyncio.create_task(follow_deliveries(hub.settings, groups, stop, counts,
                                                   keep_example))]
    start = time.monotonic()
    shown = False
    try:
        while duration is None or time.monotonic() - start < duration:
            await asyncio.sleep(every)
            echo(summary_table(counts, sent, time.monotonic() - start))
            if not shown and "rec" in example:
                group, rec = example["rec"]
                echo(f"   one record as {group} received it:\n   {json.dumps(rec)}")
                shown = True
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()  # type: ignore[misc]
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return counts
