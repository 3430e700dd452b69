"""Router glue: shared records in, per-group deliveries out. The logic is in subscriptions.py and
ledger.py; this file only moves bytes between Kafka and them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.audit_facts import (
    disclosure_fact,
    encode_fact,
    fact_key,
    payload_digest,
)
from services.core.config_follow import ConfigFollower
from services.core.config_state import ConfigState
from services.core.kafka import commit, make_consumer, make_producer
from services.core.metrics import ConsumerLag, ServiceMetrics
from services.core.ops import ops_app
from services.core.settings import Settings
from services.core.topic_scan import scan
from services.core.topics import topics_for
from services.router.audit_sink import AuditChainer, ProtocolTerms
from services.router.hotspot_runner import HotspotRunner
from services.router.ledger import DeliveryLedger, NewestIds
from services.router.policy import live_recipients
from services.router.subscriptions import Subscription, entitled_groups, subscriptions_for
from services.router.web import make_web_app

CONSUMER_GROUP = "router"


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        self.metrics = ServiceMetrics("router")
        m = self.metrics
        self.m_in = m.counter("records_in_total", "Shared records read.", ["feed"])
        self.m_delivered = m.counter("deliveries_total",
                                     "Records delivered, by group and protocol.",
                                     ["group", "protocol"])
        self.m_unrouted = m.counter("records_unrouted_total",
                                    "Shared records no group was entitled to.", ["feed"])
        self.m_dupes = m.counter("duplicates_skipped_total",
                                 "Redelivered records not sent again to a group.", ["group"])
        self.m_latency = m.histogram("batch_duration_seconds", "Time to route one batch.")
        self.ledger = DeliveryLedger(settings.router_ledger_ids_per_group)
        self.subs: list[Subscription] = []
        self.live: dict[str, frozenset[str]] = {}
        self.follower = ConfigFollower(settings, self._on_config)
        self.audit_terms = ProtocolTerms()
        self.lag = ConsumerLag(self.metrics)
        self.chainer = AuditChainer(settings, self.metrics, lag=self.lag)
        self.hotspots = HotspotRunner(settings, self.metrics, self)
        self.connected = False

    def _on_config(self, state: ConfigState) -> None:
        county = state.county
        # Polygons and county-wide groups resolve against the boundaries (cached per process).
        self.subs = subscriptions_for(county, AreaIndex.load(self.settings.boundaries_dir))
        self.live = live_recipients(state)
        self.hotspots.on_config(state)
        self.audit_terms.update(state)

    def feed_status(self) -> list[dict[str, Any]]:
        """Partner feeds' watermark state, for the group page's feed note (issue 17)."""
        return self.hotspots.feed_status()

    def ready(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to the broker"
        if not self.follower.ready.is_set():
            return False, "config not loaded"
        if not self.hotspots.ready.is_set():
            return False, "hot-spot state not loaded"
        return True, "ok"

    async def _seed_ledger(self) -> None:
        for sub in self.subs:
            # Only the newest ids fit the ledger, and the scan interleaves partitions.
            newest = NewestIds(self.ledger.max_per_group)
            async for m in scan(self.settings, self.topics.deliver(sub.group)):
                if m.key:
                    newest.add(m.timestamp, m.key.decode())
            self.ledger.seed(sub.group, newest.oldest_first())

    def route(self, rec: SharedRecord) -> list[str]:
        return entitled_groups(rec, self.subs, self.live)

    async def run(self, stop: asyncio.Event) -> None:
        await self.follower.start()
        # The audit chain's single writer lives here (see audit_sink for why and its limits).
        chain_task = asyncio.create_task(self.chainer.run(stop))
        hotspot_task = asyncio.create_task(self.hotspots.run(stop))
        await self._seed_ledger()
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings, self.topics.shared,
                                 group_id=self.topics.consumer_group(CONSUMER_GROUP))
        await producer.start()
        await consumer.start()
        self.connected = True
        try:
            while not stop.is_set():
                if chain_task.done():
                    chain_task.result()  # the chainer died: stop delivering unaudited records
                    raise RuntimeError("audit chainer stopped before the router")
                if hotspot_task.done():
                    hotspot_task.result()
                    raise RuntimeError("hot-spot stage stopped before the router")
                await self.lag.maybe_update(consumer)
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
                await commit(consumer)
                self.m_latency.observe(time.perf_counter() - t0)
        finally:
            self.connected = False
            stop.set()
            await chain_task
            await hotspot_task
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
        if groups:
            basis, transforms = self.audit_terms.of(rec.protocol, rec.feed)
            # One digest per record, not per group: the delivered bytes are the same.
            digest = payload_digest(json.loads(value))
        headers = [("protocol", rec.protocol.encode())]
        for group in groups:
            if not self.ledger.first_time(group, rec.hub_record_id):
                self.m_dupes.labels(group).inc()
                continue
            out.append(await producer.send(self.topics.deliver(group), value, key=key,
                                           headers=headers))
            self.m_delivered.labels(group, rec.protocol).inc()
            # Sent before the consumer commit, with the delivery: a crash re-emits both, and
            # the chainer recognises the fact by (group, record) and chains it once.
            fact = disclosure_fact(rec, group, lawful_basis=basis, transforms=transforms,
                                   digest=digest)
            out.append(await producer.send(self.topics.audit_facts, encode_fact(fact),
                                           key=fact_key(fact)))
        return out


def make_app(settings: Settings) -> tuple[FastAPI, Router]:
    router = Router(settings)
    app = ops_app("s115hub router", router.metrics.registry, router.ready)
    # Groups without Kafka clients: SSE stream, export and the web page (services/router/web).
    app.mount("/groups", make_web_app(settings, router, router.metrics))
    return app, router


def decode_delivery(value: bytes) -> dict[str, Any]:
    return dict(json.loads(value))
