"""The audit chainer: the one writer of ``s115.audit``, run as a second task in the router.

Producers (the router's delivery loop, hot-spot alerts, the CLI's config commands) publish
unchained facts on ``s115.audit.facts``. This task appends each fact whose identity is not yet in
the chain, in the order read, and signs a checkpoint of the head at intervals.

Configuration facts come from the officer's CLI on a topic of their own, ``s115.audit.officer``
(see ``AuditChainer``). Single-writer assumption: exactly one chainer may run per hub. The facts
topics have one partition each and the chainer reads them in the consumer group
``audit-chainer``, so a second router replica would sit idle as far as the chain goes, until a
rebalance handed it the partitions; it then re-reads the chain before writing
(``AuditChainer.on_assigned``). What this cannot protect
against is a *zombie*: a paused old owner that resumes writing after losing the partition. Apache
Kafka's transactional fencing would close that hole; aiokafka's transactional producer fails on
the embedded broker, so run one router replica (the Kubernetes manifest uses ``replicas: 1`` and
``strategy: Recreate``). A fork shows up in ``s115hub audit verify`` as two events claiming one
seq, so it is detected, not silent.

Crash safety: facts offsets are committed only after the events they produced are acknowledged.
A crash in between re-reads those facts on restart; recovery rebuilds the set of chained
identities from the chain itself, so they are not chained twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from schemas.audit_fact import AuditFact
from services.core.audit.chain_io import read_chain
from services.core.audit.errors import AuditError
from services.core.audit.key import HubAuditKey, ensure_audit_key
from services.core.audit.log import ChainState, checkpoint_message
from services.core.config.settings import Settings
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import (
    INVALID,
    Inputs,
    Item,
    Out,
    Outcome,
    Reject,
    Stage,
    describe,
)
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ServiceMetrics

log = logging.getLogger(__name__)

CONSUMER_GROUP = "audit-chainer"
CHAIN_FETCH_WAIT_MS = 250


class AuditChainer(Stage):
    """The chainer as a stage: facts in (typed, ``schemas/audit_fact.py``), chained events out.

    Anything malformed is dead-lettered by the runner and the chain moves on: a fact with a wrong
    type (``"fields": 5``) is one dead letter, never a stopped router. ``kind="config"`` is taken
    only from the officer topic (``s115.audit.officer``, which the ACLs let only the officer
    principal write), so a service cannot claim a configuration change. The event's time is the
    chainer's clock, not the producer's ``at``."""

    name = "audit-chainer"
    waits_for_assignment = True

    def __init__(self, settings: Settings, metrics: ServiceMetrics,
                 key: HubAuditKey | None = None) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        # Facts are chained in bulk, off the delivery path: a long fetch wait spares the broker
        # the idle polling (stage_runner.Inputs) and lets facts gather into bigger batches.
        self.inputs = Inputs((self.topics.audit_facts, self.topics.audit_officer),
                             self.topics.consumer_group(CONSUMER_GROUP),
                             fetch_wait_ms=CHAIN_FETCH_WAIT_MS)
        self.key = key
        self.state: ChainState | None = None
        self.recovered = asyncio.Event()
        m = metrics
        self.m_events = m.counter("audit_events_total", "Events appended to the audit chain.",
                                  ["kind"])
        self.m_dupes = m.counter("audit_facts_duplicate_total",
                                 "Facts already in the chain (re-emitted), not chained again.")
        self.m_checkpoints = m.counter("audit_checkpoints_total", "Checkpoints signed.")
        self.m_length = m.gauge("audit_chain_length", "Events in the audit chain.")
        self.m_unsigned = m.gauge("audit_unsigned_events",
                                  "Events after the latest signed checkpoint.")

    async def on_assigned(self) -> None:
        # Whoever is handed the facts partitions re-reads the chain first, so a standby replica
        # taking over continues from the real head, not from what it saw at start.
        self.recovered.clear()
        if self.key is None:
            self.key = ensure_audit_key(self.settings.resolved_audit_key_file())
        state = ChainState(self.key, every=self.settings.audit_checkpoint_every,
                           seconds=self.settings.audit_checkpoint_seconds)
        state.recover(await read_chain(self.settings))
        self.state = state
        self._gauges()
        self.recovered.set()

    def decode(self, msg: Any) -> AuditFact:
        fact = AuditFact.model_validate_json(msg.value or b"")
        if fact.kind == "config" and msg.topic != self.topics.audit_officer:
            raise AuditError(f"audit fact {fact.fact_id[:120]}: kind config is accepted only "
                             "from the officer topic")
        return fact

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        if self.state is None:
            # Partitions not (yet) assigned and recovered: nothing may be chained blind.
            raise BrokerUnavailable("audit chain not recovered")
        for item in items:
            fact: AuditFact = item.value
            try:
                got = self.state.accept_message(fact.model_dump())
            except (AuditError, ValidationError, TypeError, ValueError) as exc:
                yield Reject(describe(exc), kind=INVALID)
                continue
            if got is None:
                self.m_dupes.inc()
                yield []
                continue
            event, value = got  # value: event_message's bytes, from the sealing canonicalisation
            self.m_events.labels(event.kind).inc()
            yield [Out(self.topics.audit, value, key=fact.fact_id.encode(), partition=0)]

    def after_batch(self, processed: int) -> list[list[Out]]:
        if self.state is None:
            return []
        cp = self.state.checkpoint() if self.state.checkpoint_due() else None
        self._gauges()
        return [[self._checkpoint(cp)]] if cp is not None else []

    def on_stop(self) -> list[list[Out]]:
        # A clean stop signs what is unsigned, so a quiet hub's chain ends on a checkpoint.
        cp = self.state.checkpoint() if self.state is not None else None
        return [[self._checkpoint(cp)]] if cp is not None else []

    def _checkpoint(self, cp: Any) -> Out:
        key, value = checkpoint_message(cp)
        self.m_checkpoints.inc()
        return Out(self.topics.audit, value, key=key, partition=0)

    def _gauges(self) -> None:
        assert self.state is not None
        self.m_length.set(self.state.last.seq + 1 if self.state.last else 0)
        self.m_unsigned.set(self.state.unsigned)
