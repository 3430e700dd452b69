"""Present raw records to depersonalise again, e.g. the records a feed published while its
protocol was not live (blocked, never released) once the protocol has been signed.

The raw message is re-produced byte for byte (personal fields stay sealed), keyed by its hub record
id, onto the topic it came from. Records that were already released are harmless to present
again: the router delivers a hub record id to a group at most once, and the audit chain records a
(record, group) disclosure once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from schemas.envelope import RawRecord
from services.core.config.settings import Settings
from services.core.kafka.clients import make_producer
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for


def wanted(raw: RawRecord, *, since: datetime, until: datetime | None,
           partner: str | None) -> bool:
    env = raw.envelope
    if partner is not None and env.partner != partner:
        return False
    if env.received_at < since:
        return False
    return until is None or env.received_at < until


async def replay_raw(settings: Settings, feeds: Iterable[str], *, since: datetime,
                     until: datetime | None = None, partner: str | None = None,
                     dry_run: bool = False,
                     progress: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Re-produce matching raw records; returns counts scanned / matched / sent per run."""
    topics = topics_for(settings)
    counts = {"scanned": 0, "matched": 0, "sent": 0, "unreadable": 0}
    producer = None if dry_run else make_producer(settings)
    if producer is not None:
        await producer.start()
    last = time.monotonic()
    try:
        for feed in feeds:
            topic = topics.raw(feed)
            # Read to the end first, then produce: re-produced records must not be re-read.
            todo: list[Any] = []
            async for msg in scan(settings, topic):
                counts["scanned"] += 1
                try:
                    raw = RawRecord.model_validate_json(msg.value)
                except ValueError:
                    counts["unreadable"] += 1
                    continue
                if wanted(raw, since=since, until=until, partner=partner):
                    todo.append(msg)
                if time.monotonic() - last > 2:
                    progress(f"{topic}: scanned {counts['scanned']}, matched {len(todo)}")
                    last = time.monotonic()
            seen: set[bytes] = set()
            futures = []
            for msg in todo:
                if msg.key in seen:  # the same record written twice needs presenting once
                    continue
                seen.add(msg.key)
                counts["matched"] += 1
                if producer is not None:
                    futures.append(await producer.send(
                        topic, msg.value, key=msg.key,
                        headers=[*(msg.headers or []), ("replayed", b"protocol-replay")]))
            for f in futures:
                await f
            counts["sent"] += len(futures)
            progress(f"{topic}: {len(seen)} record(s) "
                     + ("would be presented again" if dry_run else "presented again"))
    finally:
        if producer is not None:
            await producer.stop()
    return counts
