"""Depersonalise glue: raw records in, shared records out, with live protocol reload from the
config topic. The work is in stage.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from schemas.envelope import RawRecord
from services.core.areas import AreaIndex
from services.core.audit.facts import encode_fact, fact_key
from services.core.config.follow import ConfigFollower
from services.core.config.settings import Settings
from services.core.config.state import ConfigState
from services.core.crypto.fields import DataKeyStore
from services.core.crypto.keyring import PseudonymKeyring
from services.core.crypto.keys import MasterKey
from services.core.crypto.officer_trust import AnchorFile
from services.core.kafka.stage_runner import (
    Inputs,
    Item,
    Out,
    Outcome,
    Reject,
    Stage,
    StageRunner,
    run_until_first_stops,
)
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ConsumerLag, ServiceMetrics
from services.core.ops.service import ops_app
from services.depersonalise.accounting import accounting_facts
from services.depersonalise.stage import Depersonaliser, StageResult
from services.protocols.in_force import protocol_set_of

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
        self.m_held = m.gauge("records_held", "Records the risk gate holds for their ward cell "
                              "to fill (protocol hold_hours); not committed until released.")
        self.m_unheld = m.counter("records_unheld_total",
                                  "Held records released, by the gate's final action "
                                  "(late_ward: released again with its ward, stage.py).",
                                  ["feed", "protocol", "action"])
        self.m_live = m.gauge("protocols_live", "Protocols live now.")
        self.m_review = m.gauge("protocols_review_due", "Live protocols past their review date.")
        self.m_proto_live = m.gauge("protocol_live", "1 when the protocol version is live.",
                                    ["protocol"])
        self.m_proto_review = m.gauge("protocol_review_due",
                                      "1 when the protocol version is past its review date.",
                                      ["protocol"])
        self.m_review_days = m.gauge("protocol_review_days_left",
                                     "Days until the protocol version's review_by date "
                                     "(negative: overdue); alert ahead of it.", ["protocol"])
        self.m_config_errors = m.gauge("config_errors", "Protocol texts refused at load.")
        self.lag = ConsumerLag(m)
        self._gauges_at = 0.0
        # Officer keys are pinned in a mounted file, never taken from the config topic.
        self.anchors = AnchorFile(settings.resolved_officer_keys_file())
        self.follower = ConfigFollower(settings, self._on_config, metrics=m,
                                       service="depersonalise")
        self.config_errors: dict[str, str] = {}
        self.runner = StageRunner(settings, DepersonaliseStage(self), m, service="depersonalise",
                                  lag=self.lag)

    def _on_config(self, state: ConfigState) -> None:
        pset, self.config_errors = protocol_set_of(state, self.anchors)
        self.stage.protocols = pset
        self._refresh_gauges()

    def _refresh_gauges(self) -> None:
        # Also called from the loop: a protocol lapses or falls due for review by the calendar
        # alone, with no config message to announce it.
        self._gauges_at = time.monotonic()
        today = datetime.now(UTC).date()
        statuses = self.stage.protocols.statuses(today)
        self.m_live.set(sum(1 for s in statuses if s.live))
        self.m_review.set(sum(1 for s in statuses if s.live and s.review_due))
        self.m_config_errors.set(len(self.config_errors))
        for st in statuses:
            self.m_proto_live.labels(st.ref).set(1 if st.live else 0)
            self.m_proto_review.labels(st.ref).set(1 if st.review_due else 0)
            p = self.stage.protocols.get(st.ref)
            if p is not None:
                self.m_review_days.labels(st.ref).set((p.review_by - today).days)

    def ready(self) -> tuple[bool, str]:
        ok, why = self.follower.alive()
        if not ok:
            return ok, why
        return self.runner.ready()

    async def run(self, stop: asyncio.Event) -> None:
        await self.follower.start(stop)
        try:
            task = asyncio.create_task(self.runner.run(stop))
            follower = self.follower.task
            assert follower is not None
            await run_until_first_stops(stop, {"depersonalise": task, "config": follower})
        finally:
            await self.follower.stop()


class DepersonaliseStage(Stage):
    """Raw records in, shared records out. Blocked records (no live protocol) are counted, not
    dead-lettered: they are well-formed and stay on their raw topic for a later replay."""

    def __init__(self, svc: DepersonaliseService) -> None:
        self.name = "depersonalise"
        self.svc = svc
        t = svc.topics
        self.inputs = Inputs(tuple(t.raw_all), t.consumer_group(CONSUMER_GROUP))
        self.shared = t.shared

    def decode(self, msg: Any) -> RawRecord:
        # Only ingest writes raw topics; anything else is dead-lettered by the runner.
        return RawRecord.model_validate_json(msg.value)

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        svc = self.svc
        if time.monotonic() - svc._gauges_at > 60:
            svc._refresh_gauges()
        # The ward lookup is one vectorised query for the batch; records are released lazily,
        # so the runner times each one and can resume after one that raises.
        # Positions: a record the gate holds for its ward is not committed (commit_floor).
        results = svc.stage.process_batch(
            [item.value for item in items],
            positions=[(item.msg.topic, item.msg.partition, item.msg.offset) for item in items])
        for item, result in zip(items, results, strict=True):
            raw: RawRecord = item.value
            env = raw.envelope
            svc.m_in.labels(env.partner, env.feed).inc()
            if result.blocked == "unreadable":
                svc.m_blocked.labels(env.feed, result.blocked).inc()
                # Data key shredded, or tampered: the officer sees it in `dlq list`, and the
                # dead letter is what reconciliation and status count it by.
                yield Reject(f"unreadable: {result.detail or ''}"[:300], pointer="/sealed",
                             partner=env.partner, feed=env.feed,
                             hub_record_id=env.hub_record_id, source_id=env.source_id)
                continue
            # Withheld and generalised records are accounted for on the audit chain (issue 16).
            outs = [Out(svc.topics.audit_facts, encode_fact(f), key=fact_key(f))
                    for f in accounting_facts(env, result)]
            if result.blocked:
                svc.m_blocked.labels(env.feed, result.blocked).inc()
                yield outs
                continue
            # result.shared may also carry earlier records this one released from their hold.
            outs += self._outs(result)
            for ref, action in result.gate.items():
                svc.m_gate.labels(env.feed, ref, action).inc()
            yield outs

    def _outs(self, result: StageResult) -> list[Out]:
        outs = []
        for rec in result.shared:
            outs.append(Out(self.shared, rec.model_dump_json().encode(),
                            key=rec.hub_record_id.encode()))
            self.svc.m_out.labels(rec.feed, rec.protocol).inc()
        for feed, ref, action in result.released_held:
            self.svc.m_unheld.labels(feed, ref, action).inc()
        return outs

    def after_batch(self, processed: int) -> list[list[Out]]:
        """Held records whose hold has ended leave now (at what the counts allow)."""
        outs = self._outs(self.svc.stage.due())
        self.svc.m_held.set(self.svc.stage.held)
        return [outs] if outs else []

    def commit_floor(self) -> Mapping[tuple[str, int], int]:
        return self.svc.stage.commit_floor()


def make_app(settings: Settings) -> tuple[FastAPI, DepersonaliseService]:
    svc = DepersonaliseService(settings)
    return ops_app("s115hub depersonalise", svc.metrics.registry, svc.ready), svc
