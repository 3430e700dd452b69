"""Depersonalise glue: raw records in, shared records out, with live protocol reload from the
config topic. The work is in stage.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from schemas.envelope import RawRecord
from services.core.areas import AreaIndex
from services.core.config_follow import ConfigFollower
from services.core.config_state import ConfigState
from services.core.field_crypto import DataKeyStore
from services.core.kafka import make_consumer, make_producer
from services.core.keyring import PseudonymKeyring
from services.core.keys import MasterKey
from services.core.metrics import ServiceMetrics
from services.core.ops import ops_app
from services.core.settings import Settings
from services.core.topics import topics_for
from services.depersonalise.policy import protocol_set_of
from services.depersonalise.stage import Depersonaliser

CONSUMER_GROUP = "depersonalise"


class DepersonaliseService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        master = MasterKey.from_env_or_file(
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.resolved_master_key_file())
        self.stage = Depersonaliser(
            areas=AreaIndex.load(settings.boundaries_dir),
            opener=DataKeyStore(settings.state_dir / "datakeys", master.kek()),
            keys=PseudonymKeyring(settings.state_dir / "keyring.bin", master.keyring_key()))
        m = ServiceMetrics("depersonalise")
        self.metrics = m
        self.m_in = m.counter("records_in_total", "Raw records read.", ["partner", "feed"])
        self.m_out = m.counter("records_released_total", "Shared records released, by protocol.",
                               ["feed", "protocol"])
        self.m_blocked = m.counter("records_blocked_total",
                                   "Records not released, by cause (no_live_protocol, "
                                   "unreadable).", ["feed", "cause"])
        self.m_batch = m.histogram("batch_duration_seconds", "Time to depersonalise one batch.")
        self.m_live = m.gauge("protocols_live", "Protocols live now.")
        self.m_review = m.gauge("protocols_review_due", "Live protocols past their review date.")
        self.follower = ConfigFollower(settings, self._on_config)
        self.connected = False
        self.config_errors: dict[str, str] = {}

    def _on_config(self, state: ConfigState) -> None:
        pset, self.config_errors = protocol_set_of(state)
        self.stage.protocols = pset
        statuses = pset.statuses(datetime.now(UTC).date())
        self.m_live.set(sum(1 for s in statuses if s.live))
        self.m_review.set(sum(1 for s in statuses if s.live and s.review_due))

    def ready(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to the broker"
        if not self.follower.ready.is_set():
            return False, "config not loaded"
        return True, "ok"

    async def run(self, stop: asyncio.Event) -> None:
        await self.follower.start()
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings, *self.topics.raw_all, group_id=CONSUMER_GROUP)
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
                        futures += await self._one(producer, msg.value)
                if futures:
                    await asyncio.gather(*futures)
                await consumer.commit()
                self.m_batch.observe(time.perf_counter() - t0)
        finally:
            self.connected = False
            await consumer.stop()
            await producer.stop()
            await self.follower.stop()

    async def _one(self, producer: Any, value: bytes) -> list[Any]:
        raw = RawRecord.model_validate_json(value)
        env = raw.envelope
        self.m_in.labels(env.partner, env.feed).inc()
        result = self.stage.process(raw)
        if result.blocked:
            self.m_blocked.labels(env.feed, result.blocked).inc()
            return []
        out = []
        for rec in result.shared:
            out.append(await producer.send(self.topics.shared,
                                           rec.model_dump_json().encode(),
                                           key=rec.hub_record_id.encode()))
            self.m_out.labels(env.feed, rec.protocol).inc()
        return out


def make_app(settings: Settings) -> tuple[FastAPI, DepersonaliseService]:
    svc = DepersonaliseService(settings)
    return ops_app("s115hub depersonalise", svc.metrics.registry, svc.ready), svc
