"""Kafka-native publishers: each partner writes JSON records to its own ``s115.inbound.<partner>``
topic (ACLs let only that partner write there, see deploy/security), and ingest validates them
exactly as it validates HTTP input. Rejections go to s115.rejected with the topic, partition and
offset as context; there is no reply channel, so a Kafka publisher learns of rejections from the
officer's ``s115hub dlq list``.

Message contract: value is one JSON record of the feed; header ``feed`` names the feed, and may be
left out when the partner's config grants exactly one feed. The partner is the topic's, never a
header's: a header is whatever the producer wrote, the topic is what the ACLs vouch for.

Offsets are committed only after ingest's own writes are acknowledged, so a crash or a broker
outage re-reads the batch; deterministic hub record ids make that re-read harmless downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from schemas.feeds import FEEDS
from services.core.county import County
from services.core.errors import BrokerUnavailable, CryptoError
from services.core.kafka import commit, make_consumer
from services.core.settings import Settings
from services.core.topics import Topics
from services.ingest.service import IngestService
from services.ingest.validation import Item, load_json

log = logging.getLogger(__name__)
CONSUMER_GROUP = "ingest-inbound"
UNKNOWN_FEED = "unknown"


def feed_of(county: County | None, partner: str, header: bytes | None) -> tuple[str, str | None]:
    """(feed, None) or (feed label, reason the record cannot be taken). Pure."""
    p = county.partner(partner) if county else None
    if p is None:
        return UNKNOWN_FEED, f"partner {partner!r} is not in the county configuration"
    if header is None:
        if len(p.feeds) == 1:
            return p.feeds[0], None
        return UNKNOWN_FEED, (f"partner {partner!r} publishes several feeds; name one in the "
                              f"'feed' header ({', '.join(p.feeds)})")
    name = header.decode("utf-8", "replace")
    if name not in FEEDS:
        return UNKNOWN_FEED, f"the 'feed' header names no known feed; known: {', '.join(FEEDS)}"
    if name not in p.feeds:
        return name, f"partner {partner!r} may not publish to feed {name!r}"
    return name, None


def item_of(offset: int, value: bytes | None, problem: str | None) -> Item:
    if problem is not None:
        return Item(offset, error=problem)
    if value is None:
        return Item(offset, error="the message has no value")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Item(offset, error=f"the message is not UTF-8: {exc.reason} at byte {exc.start}")
    data, error = load_json(text)
    return Item(offset, data=data, error=error, raw=text if error else None)


class InboundConsumer:
    def __init__(self, settings: Settings, topics: Topics, service: Callable[[], IngestService],
                 county: Callable[[], County | None], on_broker_error: Callable[[], None]) -> None:
        self.settings = settings
        self.topics = topics
        self.service = service
        self.county = county
        self.on_broker_error = on_broker_error
        self.prefix = topics.inbound("")

    def wanted(self) -> list[str]:
        c = self.county()
        return sorted(self.topics.inbound(p.id) for p in c.partners) if c else []

    async def run(self, stop: asyncio.Event) -> None:
        consumer = make_consumer(self.settings,
                                 group_id=self.topics.consumer_group(CONSUMER_GROUP),
                                 max_poll_records=self.settings.batch_max_records)
        await consumer.start()
        subscribed: list[str] = []
        try:
            while not stop.is_set():
                want = self.wanted()
                if want != subscribed:
                    consumer.subscribe(topics=want)
                    subscribed = want
                if not subscribed:
                    await asyncio.sleep(1)
                    continue
                batch = await consumer.getmany(timeout_ms=500,
                                               max_records=self.settings.batch_max_records)
                if not batch:
                    continue
                try:
                    await self._handle(batch)
                except (BrokerUnavailable, CryptoError) as exc:
                    log.warning("inbound batch not taken, will re-read it: %s", exc)
                    self.on_broker_error()
                    for tp, msgs in batch.items():
                        consumer.seek(tp, msgs[0].offset)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.ingest_retry_after_s)
                    continue
                await commit(consumer)
        finally:
            await consumer.stop()

    async def _handle(self, batch: dict[Any, list[Any]]) -> None:
        svc = self.service()
        county = self.county()
        for tp, msgs in batch.items():
            partner = tp.topic.removeprefix(self.prefix)
            context = {"topic": tp.topic, "partition": str(tp.partition)}
            # Consecutive runs of one feed go as one batch; order within a partition is kept.
            run: list[Item] = []
            run_feed: str | None = None
            for msg in msgs:
                header = next((v for k, v in msg.headers or () if k == "feed"), None)
                feed, problem = feed_of(county, partner, header)
                if run and feed != run_feed:
                    await svc.ingest(partner, run_feed or UNKNOWN_FEED, run, "offset", context)
                    run = []
                run_feed = feed
                run.append(item_of(msg.offset, msg.value, problem))
            if run:
                await svc.ingest(partner, run_feed or UNKNOWN_FEED, run, "offset", context)
