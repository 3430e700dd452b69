"""Router glue: shared records in, per-group deliveries out. The logic is in subscriptions.py,
routing_view.py and ledger.py; this file only moves bytes between Kafka and them.

Each batch takes one ``RoutingView`` (``routing_view.py``) and gives it to routing, the hot-spot
stage and the disclosure facts, so all three judge the batch by the same protocols and
subscriptions; the view is recomputed on config changes and at protocol validity boundaries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.audit.accounting import unrouted_fact
from services.core.audit.facts import (
    disclosure_fact,
    encode_fact,
    fact_key,
    payload_digest,
)
from services.core.config.follow import ConfigFollower
from services.core.config.settings import Settings
from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import AnchorFile
from services.core.kafka.scan import scan
from services.core.kafka.stage_runner import (
    Inputs,
    Item,
    Out,
    Outcome,
    Stage,
    StageRunner,
    run_until_first_stops,
)
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ConsumerLag, ServiceMetrics
from services.core.ops.service import ops_app
from services.router.audit_sink import AuditChainer
from services.router.hotspot_runner import HotspotRunner, merge_by_event_time
from services.router.ledger import DeliveryLedger, NewestIds
from services.router.routing_view import RoutingView, RoutingViews
from services.router.subscriptions import Subscription
from services.router.web import make_web_app
from services.router.web.officer import add_officer_page

CONSUMER_GROUP = "router"


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        # Officer keys are pinned in a mounted file, never taken from the config topic.
        self.anchors = AnchorFile(settings.resolved_officer_keys_file())
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
        self.ledger = DeliveryLedger(settings.router_ledger_ids_per_group)
        self._stop: asyncio.Event | None = None
        self.views = RoutingViews(self.anchors, lambda: AreaIndex.load(settings.boundaries_dir))
        self.follower = ConfigFollower(settings, self._on_config, metrics=m, service="router")
        self.lag = ConsumerLag(self.metrics)
        self.chainer = AuditChainer(settings, self.metrics)
        self.hotspots = HotspotRunner(settings, self.metrics, self.views)
        self.shared_runner = StageRunner(settings, SharedStage(self), m, service="router",
                                         lag=self.lag)
        self.chain_runner = StageRunner(settings, self.chainer, m, service="router",
                                        lag=self.lag)

    def _on_config(self, state: ConfigState) -> None:
        # Polygons and county-wide groups resolve against the boundaries (cached per process).
        self.views.on_config(state)

    @property
    def subs(self) -> list[Subscription]:
        """The current subscriptions (the group web app's ``GroupSource``)."""
        return list(self.views.current.subs)

    @property
    def group_names(self) -> dict[str, str]:
        """Group id -> name, for the group page's title."""
        return dict(self.views.current.group_names)

    def suppress_below_for(self, group: str) -> int:
        """The live protocols' small-count threshold for ``group`` (the group web's floor)."""
        return self.views.current.suppress_for_group(group)

    def feed_status(self) -> list[dict[str, Any]]:
        """Partner feeds' watermark state, for the group page's feed note (issue 17)."""
        return self.hotspots.feed_status()

    def ready(self) -> tuple[bool, str]:
        if self._stop is not None and self._stop.is_set():
            # Also ends the groups' SSE streams, which uvicorn's graceful shutdown waits for.
            return False, "stopping"
        ok, why = self.follower.alive()
        if not ok:
            return ok, why
        for runner in (self.shared_runner, self.chain_runner):
            ok, why = runner.ready()
            if not ok:
                return ok, why
        if not self.hotspots.ready.is_set():
            return False, "hot-spot state not loaded"
        return True, "ok"

    async def _seed_ledger(self) -> None:
        for sub in self.views.current.subs:
            # Only the newest ids fit the ledger, and the scan interleaves partitions.
            newest = NewestIds(self.ledger.max_per_group)
            async for m in scan(self.settings, self.topics.deliver(sub.group)):
                if m.key:
                    newest.add(m.timestamp, m.key.decode())
            self.ledger.seed(sub.group, newest.oldest_first())

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await self.follower.start(stop)
        try:
            await self._seed_ledger()
            await self.hotspots.prepare()
            # The audit chain's single writer lives here (see audit_sink for why and its limits).
            tasks = {"audit-chainer": asyncio.create_task(self.chain_runner.run(stop)),
                     "router": asyncio.create_task(self.shared_runner.run(stop))}
            follower = self.follower.task
            assert follower is not None
            tasks["config"] = follower
            # Ready once the snapshot is loaded, not once the backlog is read: routing and
            # counting catch up together, and a restarted router with a large backlog must not
            # look dead to its supervisor (kill -9 test: 56,000 records behind at load 29).
            self.hotspots.ready.set()
            await run_until_first_stops(stop, tasks)
        finally:
            self.hotspots.ready.clear()
            await self.follower.stop()

    def route_record(self, rec: SharedRecord, value: bytes, groups: list[str],
                     view: RoutingView) -> list[Out]:
        """Deliveries and their disclosure facts for one record already known to be new here."""
        self.m_in.labels(rec.feed).inc()
        if not groups:
            self.m_unrouted.labels(rec.feed).inc()
            # Accounted for on the audit chain, so the partner's reconciliation finds it.
            fact = unrouted_fact(rec)
            return [Out(self.topics.audit_facts, encode_fact(fact), key=fact_key(fact))]
        out: list[Out] = []
        key = rec.hub_record_id.encode()
        basis, transforms = view.terms_of(rec.protocol, rec.feed)
        # One digest per record, not per group: the delivered bytes are the same.
        digest = payload_digest(json.loads(value))
        headers = [("protocol", rec.protocol.encode())]
        for group in groups:
            if not self.ledger.first_time(group, rec.hub_record_id):
                self.m_dupes.labels(group).inc()
                continue
            out.append(Out(self.topics.deliver(group), value, key=key, headers=headers))
            self.m_delivered.labels(group, rec.protocol).inc()
            # Sent before the consumer commit, with the delivery: a crash re-emits both, and
            # the chainer recognises the fact by (group, record) and chains it once.
            fact = disclosure_fact(rec, group, lawful_basis=basis, transforms=transforms,
                                   digest=digest)
            out.append(Out(self.topics.audit_facts, encode_fact(fact), key=fact_key(fact)))
        return out


class SharedStage(Stage):
    """The router's one read of ``s115.shared``: each record is parsed once and given to routing
    (deliveries + disclosure facts) and to the hot-spot stage (alerts + alert facts). Every
    partition is assigned here (the hot-spot statistics need the whole county; one router runs
    per hub, see audit_sink.py); routing progress is committed to the ``router`` group, counting
    progress lives in the hot-spot snapshot, and the read starts at the lower of the two."""

    def __init__(self, router: Router) -> None:
        self.name = "router"
        self.router = router
        t = router.topics
        self.inputs = Inputs((t.shared,), t.consumer_group(CONSUMER_GROUP), assign_all=True)
        self.route_from: dict[int, int] = {}

    async def start_positions(self, consumer: Any, tps: list[Any]) -> dict[Any, int | None]:
        out: dict[Any, int | None] = {}
        for tp in tps:
            routed = await consumer.committed(tp)
            self.route_from[tp.partition] = routed or 0
            counted = self.router.hotspots.start_offset(tp.partition)
            known = [o for o in (routed, counted) if o is not None]
            out[tp] = min(known) if len(known) == 2 else None
        return out

    def decode(self, msg: Any) -> SharedRecord:
        return SharedRecord.model_validate_json(msg.value)

    def order(self, by_partition: dict[Any, list[Item]]) -> Iterable[Item]:
        return merge_by_event_time(by_partition.values())

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        router = self.router
        hot = router.hotspots
        now = router.views.now()
        view = router.views.at(now)  # one view per batch: routing and alerts agree
        for item in items:
            rec: SharedRecord = item.value
            msg = item.msg
            groups = view.route(rec)
            out = (router.route_record(rec, msg.value, groups, view)
                   if msg.offset >= self.route_from.get(msg.partition, 0) else [])
            out += hot.observe(rec, msg.partition, msg.offset, bool(groups), now, view)
            yield out

    def after_batch(self, processed: int) -> list[list[Out]]:
        return self.router.hotspots.after_batch()

    def on_stop(self) -> list[list[Out]]:
        return self.router.hotspots.on_stop()


def make_app(settings: Settings) -> tuple[FastAPI, Router]:
    router = Router(settings)
    app = ops_app("s115hub router", router.metrics.registry, router.ready)
    # Groups without Kafka clients: SSE stream, export and the web page (services/router/web).
    app.mount("/groups", make_web_app(settings, router, router.metrics))
    add_officer_page(app, settings)  # issue 16
    return app, router


def decode_delivery(value: bytes) -> dict[str, Any]:
    return dict(json.loads(value))
