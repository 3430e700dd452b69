"""Depersonalise glue: raw records in, shared records out, with live protocol reload from the
config topic. The work is in stage.py."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from schemas.envelope import RawRecord
from services.core.areas import AreaIndex
from services.core.config_follow import ConfigFollower
from services.core.config_state import ConfigState
from services.core.field_crypto import DataKeyStore
from services.core.kafka import commit, make_consumer, make_producer
from services.core.keyring import PseudonymKeyring
from services.core.keys import MasterKey
from services.core.metrics import ConsumerLag, ServiceMetrics
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
        self.m_blocked = m.counter(
            "records_blocked_total",
            "Records released under no protocol, by cause: no_protocol, unsigned, bad_signature "
            "(edited after signing, or a wrong key), expired, not_yet_valid, revoked, unreadable.",
            ["feed", "cause"])
        self.m_gate = m.counter("records_gated_total",
                                "Released records by risk gate action (release, generalise, "
                                "suppress).", ["feed", "protocol", "action"])
        self.m_batch = m.histogram("batch_duration_seconds", "Time to depersonalise one batch.")
        self.m_live = m.gauge("protocols_live", "Protocols live now.")
        self.m_review = m.gauge("protocols_review_due", "Live protocols past their review date.")
        self.m_proto_live = m.gauge("protocol_live", "1 when the protocol version is live.",
                                    ["protocol"])
        self.m_proto_review = m.gauge("protocol_review_due",
                                      "1 when the protocol version is past its review date.",
                                      ["protocol"])
        self.m_config_errors = m.gauge("config_errors", "Protocol texts refused at load.")
        self.lag = ConsumerLag(m)
        self._gauges_at = 0.0
        self.follower = ConfigFollower(settings, self._on_config)
        self.connected = False
        self.config_errors: dict[str, str] = {}

    def _on_config(self, state: ConfigState) -> None:
        pset, self.config_errors = protocol_set_of(state)
        self.stage.protocols = pset
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        # Also called from the loop: a protocol lapses or falls due for review by the calendar
        # alone, with no config message to announce it.
        self._gauges_at = time.monotonic()
        statuses = self.stage.protocols.statuses(datetime.now(UTC).date())
        self.m_live.set(sum(1 for s in statuses if s.live))
        self.m_review.set(sum(1 for s in statuses if s.live and s.review_due))
        self.m_config_errors.set(len(self.config_errors))
        for st in statuses:
            self.m_proto_live.labels(st.ref).set(1 if st.live else 0)
            self.m_proto_review.labels(st.ref).set(1 if st.review_due else 0)

    def ready(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to the broker"
        if not self.follower.ready.is_set():
            return False, "config not loaded"
        return True, "ok"

    async def run(self, stop: asyncio.Event) -> None:
        await self.follower.start()
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings, *self.topics.raw_all,
                                 group_id=self.topics.consumer_group(CONSUMER_GROUP))
        await producer.start()
        await consumer.start()
        self.connected = True
        try:
            while not stop.is_set():
                if time.monotonic() - self._gauges_at > 60:
                    self._refresh_gauges()
                await self.lag.maybe_update(consumer)
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
                await commit(consumer)
                self.m_batch.observe(time.perf_counter() - t0)
        finally:
            self.connected = False
            await consumer.stop()
            await producer.stop()
            await self.follower.stop()

    async def _one(self, producer: Any, value: bytes) -> list[Any]:
        try:
            raw = RawRecord.model_validate_json(value)
        except ValidationError:
            # Only ingest writes raw topics; a message it did not write is counted, not fatal,
            # or one bad message would stop every partner's records behind it.
            self.m_blocked.labels("unknown", "unreadable").inc()
            return []
        env = raw.envelope
        self.m_in.labels(env.partner, env.feed).inc()
        result = self.stage.process(raw)
        if result.blocked:
            self.m_blocked.labels(env.feed, result.blocked).inc()
            if result.blocked == "unreadable":
                return [await self._dead_letter(producer, raw, result.detail or "")]
            return []
        out = []
        for rec in result.shared:
            out.append(await producer.send(self.topics.shared,
                                           rec.model_dump_json().encode(),
                                           key=rec.hub_record_id.encode()))
            self.m_out.labels(env.feed, rec.protocol).inc()
        for ref, action in result.gate.items():
            self.m_gate.labels(env.feed, ref, action).inc()
        return out


    async def _dead_letter(self, producer: Any, raw: RawRecord, detail: str) -> Any:
        """A record whose sealed fields cannot be opened (data key shredded, or tampered): a
        dead letter with its context and no personal data, so the officer sees it in
        ``s115hub dlq list``. Keyed and numbered by the record id, so a re-read is one entry."""
        env = raw.envelope
        letter_id = "u" + env.hub_record_id
        letter = {"rejection_id": letter_id, "stage": "depersonalise",
                  "partner": env.partner, "feed": env.feed,
                  "hub_record_id": env.hub_record_id, "source_id": env.source_id,
                  "problems": [{"pointer": "/sealed", "reason": f"unreadable: {detail}"[:300]}],
                  "rejected_at": datetime.now(UTC).isoformat()}
        headers = [("partner", env.partner.encode()), ("feed", env.feed.encode()),
                   ("reason", b"unreadable"), ("stage", b"depersonalise")]
        return await producer.send(self.topics.rejected, json.dumps(letter).encode(),
                                   key=letter_id.encode(), headers=headers)


def make_app(settings: Settings) -> tuple[FastAPI, DepersonaliseService]:
    svc = DepersonaliseService(settings)
    return ops_app("s115hub depersonalise", svc.metrics.registry, svc.ready), svc
