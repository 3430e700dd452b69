"""The audit chainer: the one writer of ``s115.audit``, run as a second task in the router.

Producers (the router's delivery loop, hot-spot alerts, the CLI's config commands) publish
unchained facts on ``s115.audit.facts``. This task appends each fact whose identity is not yet in
the chain, in the order read, and signs a checkpoint of the head at intervals.

Single-writer assumption: exactly one chainer may run per hub. The facts topic has one
partition and the chainer reads it in the consumer group ``audit-chainer``, so a second router
replica would sit idle as far as the chain goes, until a rebalance handed it the partition; it
then re-reads the chain before writing (``Resync``). What this cannot protect
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
import contextlib
import logging
from typing import Any

from services.core.audit_chain import AuditError
from services.core.audit_facts import decode_fact, protocol_terms
from services.core.audit_io import read_chain
from services.core.audit_key import HubAuditKey, ensure_audit_key
from services.core.audit_log import ChainState, checkpoint_message, event_message
from services.core.config_state import ConfigState
from services.core.errors import HubError
from services.core.kafka import commit, make_consumer, make_producer
from services.core.metrics import ConsumerLag, ServiceMetrics
from services.core.settings import Settings
from services.core.topics import topics_for

log = logging.getLogger(__name__)

CONSUMER_GROUP = "audit-chainer"
_RETRY_SECONDS = 2.0


class ProtocolTerms:
    """ref -> (lawful basis, field -> transform per feed), from the config state, so the router
    can say under what terms it disclosed without re-parsing YAML per record."""

    def __init__(self) -> None:
        self._terms: dict[str, tuple[list[str], dict[str, dict[str, str]]]] = {}

    def update(self, state: ConfigState) -> None:
        from services.depersonalise.policy import protocol_set_of

        pset, _ = protocol_set_of(state)
        terms: dict[str, tuple[list[str], dict[str, dict[str, str]]]] = {}
        for p in pset:
            by_feed = {feed: protocol_terms(p, feed)[1] for feed in p.feeds}
            terms[p.ref] = (list(p.lawful_basis), by_feed)
        self._terms = terms

    def of(self, ref: str, feed: str) -> tuple[list[str], dict[str, str]]:
        got = self._terms.get(ref)
        if got is None:
            # The router only routes under live protocols, which it has parsed; reaching here
            # means a record would leave unaudited, so refuse the batch instead.
            raise AuditError(f"protocol {ref} is not in the config state; cannot audit the "
                             "disclosure")
        return got[0], got[1].get(feed, {})


class AuditChainer:
    def __init__(self, settings: Settings, metrics: ServiceMetrics,
                 key: HubAuditKey | None = None, lag: ConsumerLag | None = None) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        self.key = key
        self.state: ChainState | None = None
        self.recovered = asyncio.Event()
        self.lag = lag
        m = metrics
        self.m_events = m.counter("audit_events_total", "Events appended to the audit chain.",
                                  ["kind"])
        self.m_dupes = m.counter("audit_facts_duplicate_total",
                                 "Facts already in the chain (re-emitted), not chained again.")
        self.m_bad = m.counter("audit_facts_malformed_total",
                               "Facts that could not be chained.", ["reason"])
        self.m_checkpoints = m.counter("audit_checkpoints_total", "Checkpoints signed.")
        self.m_length = m.gauge("audit_chain_length", "Events in the audit chain.")
        self.m_unsigned = m.gauge("audit_unsigned_events",
                                  "Events after the latest signed checkpoint.")
        self.m_restarts = m.counter("audit_chainer_restarts_total",
                                    "Times the chainer recovered from an error.")

    async def run(self, stop: asyncio.Event) -> None:
        """Chain until ``stop``; on a broker error, re-read the chain and carry on."""
        if self.key is None:
            self.key = ensure_audit_key(self.settings.resolved_audit_key_file())
        while not stop.is_set():
            try:
                await self._run_once(stop)
            except (HubError, OSError, ConnectionError) as exc:
                self._restart(exc)
            except Exception as exc:  # aiokafka's errors share no base class with ours
                if type(exc).__module__.split(".")[0] not in ("aiokafka", "kafka"):
                    raise
                self._restart(exc)
            else:
                return
            self.recovered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _RETRY_SECONDS)

    def _restart(self, exc: BaseException) -> None:
        self.m_restarts.inc()
        log.warning("audit chainer: %s; re-reading the chain", exc)

    async def _recover(self) -> ChainState:
        assert self.key is not None
        state = ChainState(self.key, every=self.settings.audit_checkpoint_every,
                           seconds=self.settings.audit_checkpoint_seconds)
        state.recover(await read_chain(self.settings))
        self.m_length.set(state.last.seq + 1 if state.last else 0)
        self.m_unsigned.set(state.unsigned)
        return state

    async def _run_once(self, stop: asyncio.Event) -> None:
        from aiokafka import ConsumerRebalanceListener

        chainer = self

        class Resync(ConsumerRebalanceListener):
            # Whoever is handed the facts partition re-reads the chain first, so a standby
            # replica taking over continues from the real head, not from what it saw at start.
            # Only flagged here: fetching may already run while this callback is awaited.
            async def on_partitions_revoked(self, revoked: Any) -> None:
                chainer.recovered.clear()
                chainer.state = None

            async def on_partitions_assigned(self, assigned: Any) -> None:
                resync[0] = bool(assigned)

        resync = [False]
        self.state = None
        producer = make_producer(self.settings)
        consumer = make_consumer(self.settings,
                                 group_id=self.topics.consumer_group(CONSUMER_GROUP))
        await producer.start()
        try:
            await consumer.start()
            consumer.subscribe([self.topics.audit_facts], listener=Resync())
            while not stop.is_set():
                if self.lag is not None:
                    await self.lag.maybe_update(consumer)
                batch = await consumer.getmany(timeout_ms=300,
                                               max_records=self.settings.batch_max_records)
                if resync[0]:
                    resync[0] = False
                    self.state = await self._recover()
                    # Anything fetched before recovery is dropped and read again from the
                    # committed position, now against the real chain head.
                    for tp in consumer.assignment():
                        committed = await consumer.committed(tp)
                        if committed is None:
                            await consumer.seek_to_beginning(tp)
                        else:
                            consumer.seek(tp, committed)
                    self.recovered.set()
                    continue
                if self.state is None:
                    continue
                pending = [await self._chain(producer, m)
                           for msgs in batch.values() for m in msgs]
                cp = self.state.checkpoint() if self.state.checkpoint_due() else None
                if cp is not None:
                    pending.append(await self._send_checkpoint(producer, cp))
                futures = [f for f in pending if f is not None]
                if futures:
                    await asyncio.gather(*futures)
                if batch:
                    await commit(consumer)
                self._gauges()
            # A clean stop signs what is unsigned, so a quiet hub's chain ends on a checkpoint.
            cp = self.state.checkpoint() if self.state is not None else None
            if cp is not None:
                await (await self._send_checkpoint(producer, cp))
                self._gauges()
        finally:
            await consumer.stop()
            await producer.stop()

    async def _chain(self, producer: Any, msg: Any) -> Any:
        assert self.state is not None
        try:
            fact = decode_fact(msg.value)
            event = self.state.accept(fact)
        except AuditError as exc:
            # Not a broker problem and retrying cannot fix it; the fact stays on its topic for
            # investigation and the chain moves on. The metric makes it visible.
            self.m_bad.labels("invalid").inc()
            log.error("audit fact at %s offset %s not chained: %s", msg.topic, msg.offset, exc)
            return None
        if event is None:
            self.m_dupes.inc()
            return None
        key, value = event_message(event, str(fact["fact_id"]))
        self.m_events.labels(event.kind).inc()
        return await producer.send(self.topics.audit, value, key=key, partition=0)

    async def _send_checkpoint(self, producer: Any, cp: Any) -> Any:
        key, value = checkpoint_message(cp)
        self.m_checkpoints.inc()
        return await producer.send(self.topics.audit, value, key=key, partition=0)

    def _gauges(self) -> None:
        assert self.state is not None
        self.m_length.set(self.state.last.seq + 1 if self.state.last else 0)
        self.m_unsigned.set(self.state.unsigned)
