"""Router glue: shared records in, per-group deliveries out. The logic is in subscriptions.py and
ledger.py; this file only moves bytes between Kafka and them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI

from schemas.shared import SharedRecord
from services.core.config_follow import ConfigFollower
from services.core.config_state import ConfigState
from services.core.kafka import make_consumer, make_producer
from services.core.metrics import ServiceMetrics
from services.core.ops import ops_app
from services.core.settings import Settings
from services.core.topic_scan import scan
from services.core.topics import topics_for
from services.router.ledger import DeliveryLedger
from services.router.policy import live_recipients
from services.router.subscriptions import Subscription, entitled_groups

CONSUMER_GROUP = "router"


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        self.metrics = ServiceMetrics("router")
        m = self.metrics
        self.m_in = m.counter("records_in_total", "Shared records read.", ["feed"])
        self.m_delivered = m.counter("deliveries_total", "Records delivered, by group and protocol.",
                                     ["group", "protocol"])
        self.m_unrouted = m.counter("records_unrouted_total",
                                    "Shared records no group was entitled to.", ["feed"])
        self.m_dupes = m.counter("duplicates_skipped_total",
                                 "Redelivered records not sent again to a group.", ["group"])
        self.m_latency = m.histogram("batch_duration_seconds", "Time to route one batch.")
        self.ledger = DeliveryLedger()
        self.subs: list[Subscription] = []
        self.live: dict[str, frozenset[str]] = {}
        self.follower = ConfigFollower(settings, self._on_config)
        self.connected = False

    def _on_config(self, state: ConfigState) -> None:
        county = state.county
        self.subs = [Subscription.of(g) for g in county.groups] if county else []
        self.live = live_recipients(state)

    def ready(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to the broker"
        if not self.follower.ready.is_set():
            return False, "config not loaded"
        return True, "ok"

    async def _seed_ledger(self) -> None:
        for sub in self.subs:
            ids = {m.key.decode() async for m in scan(self.settings, self.topics.deliver(sub.group))
                   if m.key}
            self.ledger.seed(sub.group, ids)

    def route(self, rec: SharedRecord) -> list[str]:
        return entitled_groups(rec, self.subs, self.live)

    async def run(self, stop: asyncio.Event) -> None:
        await self.follower.start()
        await self._seed_ledger()
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings, self.topics.shared, group_id=CONSUMER_GROUP)
        await producer.start()
        await consumer.start()
        self.connected = True
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500,
                                               max_records=self.settings.batch_max_records)
                if not batch:
                    continue
                t0 = time.perf_counter()
                futures: list[Any] = []
                for msgs in batch.values():
                    for msg in msgs:
                        futures += await self._route_one(producer, msg.value)
                if futures:
                    await asyncio.gather(*futures)
                await consumer.commit()
                self.m_latency.observe(time.perf_counter() - t0)
        finally:
            self.connected = False
            await consumer.stop()
            await producer.stop()
            await self.follower.stop()

    async def _route_one(self, producer: Any, value: bytes) -> list[Any]:
        rec = SharedRecord.model_validate_json(value)
        self.m_in.labels(rec.feed).inc()
        groups = self.route(rec)
        if not groups:
            self.m_unrouted.labels(rec.feed).inc()
        out = []
        key = rec.hub_record_id.encode()
        headers = [("protocol", rec.protocol.encode())]
        for group in groups:
            if not self.ledger.first_time(group, rec.hub_record_id):
                self.m_dupes.labels(group).inc()
                continue
            out.append(await producer.send(self.topics.deliver(group), value, key=key,
                                           headers=headers))
            self.m_delivered.labels(group, rec.protocol).inc()
        return out


def make_app(settings: Settings) -> tuple[FastAPI, Router]:
    router = Router(settings)
    return ops_app("s115hub router", router.metrics.registry, router.ready), router


def decode_delivery(value: bytes) -> dict[str, Any]:
    return dict(json.loads(value))
