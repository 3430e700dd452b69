"""The one consume -> process -> produce loop of the hub (issue 12).

A *stage* is a pure handler plus its inputs: ``decode`` reads one message with its contract,
``handle`` turns a batch of decoded items into one outcome per item (messages to produce, or a
``Reject``), ``after_batch`` may add messages that must follow the batch (a checkpoint, a state
snapshot). The runner alone polls, produces, commits, measures and applies the error policy:

* a message the stage cannot process (its contract fails, the handler rejects it, the handler
  raises, or it takes longer than the per-record work budget) is dead-lettered on
  ``s115.rejected`` with stage, topic, partition, offset and a reason that names the field and
  the rule, never the value; it is counted and skipped. The rest of the batch goes on, so no
  message stops a service or stalls its partition;
* only infrastructure failure (the broker down, a send not acknowledged) stops progress. A stage
  marked ``retry_on_infra`` (stateless) re-reads the batch after a pause, not ready meanwhile; a
  stateful stage stops, the service goes not ready and exits, and its state is rebuilt from the
  durable topics on restart (what the kill -9 tests exercise).

Ordering of effects per batch: every output is handed to the producer without awaiting each send
(the producer batches them), then all acknowledgements are awaited, then ``after_batch`` waves are
sent (each wave acknowledged before the next), and only then are input offsets committed. A crash
anywhere re-reads the batch; every stage is idempotent by hub record id or fact id.

Pipelining (issue 12): while batch N's acknowledgements are on their way the runner polls and
handles batch N+1 (pure CPU work: decode, handle, ``after_batch``, ``commit_floor``), and only
then finishes N (awaits its acks, sends its waves, commits it) before handing N+1's outputs to the
producer. So the order of effects on the broker is exactly the unpipelined one (N's outputs, N's
waves, N's commit, N+1's outputs); what changes is that the stage's memory runs one batch ahead
of the last commit, which a crash handles like any other: the uncommitted batches are read again
and deduplicated downstream. The waves and the commit floor are taken right after the batch is
handled, so they describe that batch, not a later one.

The work budget is checked between records: a handler is plain Python and cannot be interrupted
mid-record, so the budget bounds what a slow record costs downstream (it is dropped and dead-
lettered, never released late) but not the time it took; bounding that is each transform's job.

Over 400 lines because it is the one loop every stage runs on: polling, producing, committing,
metrics and the error policy are read together.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import traceback
import weakref
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter, Problem
from services.core.config.settings import Settings
from services.core.errors import HubError
from services.core.kafka.clients import commit, make_consumer, make_producer, topic_partitions
from services.core.kafka.errors import BrokerUnavailable, is_client_error
from services.core.kafka.topics import topics_for
from services.core.ops.heap import settle_heap
from services.core.ops.metrics import ConsumerLag, ServiceMetrics

log = logging.getLogger(__name__)

#: Reason kinds, the bounded label of ``stage_dead_letters_total``.
INVALID, REJECTED, ERROR, BUDGET = "invalid", "rejected", "error", "budget"
_EMPTY_ROUNDS = 2
#: Longest stretch of a batch's pure work between two returns to the event loop. The producer's
#: sender, the consumer's fetcher, the other stages of the service (the router's chainer) and
#: /readyz only run when the loop gets control back: a 2,000-record batch handled in one go held
#: them all for a few hundred milliseconds (measured at 200/s, issue 12: the previous batch's
#: outputs waited in the producer's buffer while the next one was handled).
YIELD_EVERY_S = 0.005


@dataclass(slots=True)
class Out:
    """One message to produce."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None
    partition: int | None = None


@dataclass(slots=True)
class Reject:
    """The handler refuses this item. ``reason`` must hold no personal data; the optional ids are
    copied into the dead letter so the officer can find the record."""

    reason: str
    pointer: str = ""
    kind: str = REJECTED
    partner: str | None = None
    feed: str | None = None
    hub_record_id: str | None = None
    source_id: str | None = None


Outcome = list[Out] | Reject


@dataclass(slots=True)
class Item:
    msg: Any  # aiokafka ConsumerRecord: topic, partition, offset, key, value, headers, timestamp
    value: Any


@dataclass(frozen=True)
class Inputs:
    """How a stage reads. ``group``: consumer group whose committed offsets hold progress (None:
    no commits, positions are the stage's own). ``assign_all``: read every partition of
    ``topics`` in this process instead of joining the group (stages that need the whole stream:
    config, hot spots); progress is still committed to ``group`` when one is named.
    ``catch_up``: not ready until the ends seen at start have been read. ``fetch_wait_ms``: how
    long the broker may hold an empty fetch (None: the client default, short for the record
    path). Off the record path (config, the audit chain) a longer wait costs nothing that
    matters and saves the broker most of its idle fetches: on tansu, which holds a fetch for the
    whole wait, seven consumers polling every 20 ms kept an idle hub's broker at ~0.3 of a core
    (measured, issue 12)."""

    topics: tuple[str, ...]
    group: str | None
    assign_all: bool = False
    catch_up: bool = False
    fetch_wait_ms: int | None = None


class Stage:
    """Base with the defaults; subclasses set ``name`` and ``inputs`` and override ``handle``."""

    name = "stage"
    inputs = Inputs((), None)
    #: Stateless stages may re-read a batch after an infrastructure failure without restarting.
    retry_on_infra = False
    #: Subscribe-mode stages whose state is built in ``on_assigned``: nothing is processed
    #: before the first assignment has been handled.
    waits_for_assignment = False

    def input_topics(self) -> Sequence[str]:
        """Topics to subscribe to now (subscribe mode re-reads this every poll)."""
        return self.inputs.topics

    def decode(self, msg: Any) -> Any:
        """Read one message with its contract; raise (ValidationError, HubError, ValueError) to
        have it dead-lettered as invalid."""
        return msg.value

    def order(self, by_partition: dict[Any, list[Item]]) -> Iterable[Item]:
        """The decoded items in processing order (offsets must rise per partition)."""
        return [i for items in by_partition.values() for i in items]

    def handle(self, items: list[Item]) -> Iterable[Outcome] | Awaitable[list[Outcome]]:
        """One outcome per item, in order. A generator lets the runner isolate a raising or
        slow record and resume after it with the rest of the batch."""
        raise NotImplementedError

    def after_batch(self, processed: int) -> list[list[Out]]:
        """Waves of messages sent after the batch's outputs are acknowledged (called every poll,
        ``processed`` 0 when idle)."""
        return []

    def commit_floor(self) -> Mapping[tuple[str, int], int]:
        """Per input (topic, partition): an offset the runner must not commit past, because the
        stage still holds the record there (depersonalise's risk-gate hold). After a crash the
        record is read again from that offset. Empty: commit what was processed."""
        return {}

    def on_stop(self) -> list[list[Out]]:
        """Waves sent once on a clean stop (a final checkpoint, a last snapshot)."""
        return []

    async def start_positions(self, consumer: Any, tps: list[Any]) -> dict[Any, int | None]:
        """Where to start each assigned partition (None: the beginning). Default: the group's
        committed offset, else the beginning."""
        out: dict[Any, int | None] = {}
        for tp in tps:
            out[tp] = await consumer.committed(tp) if self.inputs.group else None
        return out

    async def on_assigned(self) -> None:
        """Called (from the loop, not the rebalance callback) after partitions were assigned in
        subscribe mode, before anything is processed; the runner then re-reads from the
        committed offsets."""


class StageStopped(HubError):
    """A stage stopped on infrastructure failure; the service is not ready and should exit."""


def describe(exc: BaseException) -> str:
    """A reason that names field and rule, never a value (pydantic echoes input by default; an
    arbitrary exception's text may carry anything, so only its type and where it was raised)."""
    if isinstance(exc, ValidationError):
        parts = [f"{'/'.join(str(p) for p in e['loc']) or '/'}: {e['msg']}"
                 for e in exc.errors(include_input=False, include_url=False)[:5]]
        more = exc.error_count() - len(parts)
        return ("; ".join(parts) + (f" (+{more} more)" if more > 0 else ""))[:500]
    if isinstance(exc, HubError) and isinstance(exc.__cause__, ValidationError):
        return f"{type(exc).__name__}: {describe(exc.__cause__)}"[:500]
    if isinstance(exc, HubError):
        return f"{type(exc).__name__}: {exc}"[:500]
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}{where}"


def is_infra(exc: BaseException) -> bool:
    if isinstance(exc, BrokerUnavailable | ConnectionError | TimeoutError):
        return True
    return is_client_error(exc)


class _Metrics:
    def __init__(self, m: ServiceMetrics) -> None:
        self.records = m.counter("stage_records_total", "Messages a stage finished, by outcome "
                                 "(ok, dead_letter).", ["stage", "outcome"])
        self.dead = m.counter("stage_dead_letters_total", "Messages dead-lettered and skipped, "
                              "by stage and reason kind (invalid, rejected, error, budget).",
                              ["stage", "kind"])
        self.batch = m.histogram("stage_batch_duration_seconds", "Poll-to-commit time of one "
                                 "batch.", ["stage"])
        self.infra = m.counter("stage_infra_failures_total", "Broker failures seen by a stage.",
                               ["stage"])


_METRICS: weakref.WeakKeyDictionary[Any, _Metrics] = weakref.WeakKeyDictionary()


def stage_metrics(m: ServiceMetrics) -> _Metrics:
    got = _METRICS.get(m.registry)
    if got is None:
        got = _METRICS[m.registry] = _Metrics(m)
    return got


@dataclass
class _Status:
    connected: bool = False
    caught_up: bool = False
    failing: str | None = None
    ends: dict[Any, int] = field(default_factory=dict)
    empty: dict[Any, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """A batch whose outputs are with the producer: what finishing it needs."""

    batch: dict[Any, list[Any]]
    acks: list[Any]
    waves: list[list[Out]]
    floor: Mapping[tuple[str, int], int]
    t0: float


class StageRunner:
    def __init__(self, settings: Settings, stage: Stage, metrics: ServiceMetrics, *,
                 service: str, lag: ConsumerLag | None = None, producer: Any = None) -> None:
        self.settings = settings
        self.stage = stage
        self.service = service
        self.topics = topics_for(settings)
        self.m = stage_metrics(metrics)
        self.lag = lag
        self._producer = producer
        self.status = _Status()
        self.caught_up = asyncio.Event()
        self.budget_s = settings.stage_record_budget_s
        self._reassigned = False
        self._assigned = False
        self._pending: _Pending | None = None
        self._lag_task: asyncio.Task[None] | None = None

    # -- readiness ----------------------------------------------------------------------------

    def ready(self) -> tuple[bool, str]:
        s = self.status
        if not s.connected:
            return False, f"{self.stage.name}: not connected to the broker"
        if s.failing:
            return False, f"{self.stage.name}: {s.failing}"
        if self.stage.inputs.catch_up and not s.caught_up:
            return False, f"{self.stage.name}: catching up"
        return True, "ok"

    # -- run ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        own = self._producer is None
        producer = make_producer(self.settings) if own else self._producer
        inputs = self.stage.inputs
        wait = {} if inputs.fetch_wait_ms is None else {"fetch_max_wait_ms": inputs.fetch_wait_ms}
        consumer = make_consumer(self.settings, group_id=inputs.group,
                                 max_poll_records=self.settings.batch_max_records, **wait)
        if own:
            await producer.start()
        await consumer.start()
        try:
            await self._assign(consumer)
            self.status.connected = True
            settle_heap()  # the service's start-up state is loaded by now
            subscribed: list[str] = []
            while not stop.is_set():
                if not inputs.assign_all:
                    want = sorted(self.stage.input_topics())
                    if want != subscribed:
                        consumer.subscribe(topics=want, listener=self._listener())
                        subscribed = want
                    if not subscribed:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 1.0)
                        continue
                await self._step(consumer, producer, stop)
            await self._finish(consumer, producer)
            for wave in self.stage.on_stop():
                await self._send_all(producer, wave)
        finally:
            self.status.connected = False
            if self._lag_task is not None:
                self._lag_task.cancel()
                with contextlib.suppress(BaseException):
                    await self._lag_task
            await consumer.stop()
            if own:
                await producer.stop()

    def _listener(self) -> Any:
        from aiokafka import ConsumerRebalanceListener

        runner = self

        class Listener(ConsumerRebalanceListener):
            # Only flagged here: fetching may already run while this callback is awaited.
            async def on_partitions_revoked(self, revoked: Any) -> None:
                pass

            async def on_partitions_assigned(self, assigned: Any) -> None:
                runner._reassigned = bool(assigned)

        return Listener()

    async def _assign(self, consumer: Any) -> None:
        from aiokafka import TopicPartition

        inputs = self.stage.inputs
        if not inputs.assign_all:
            return
        tps = [TopicPartition(t, p) for t in inputs.topics
               for p in await topic_partitions(consumer, t)]
        consumer.assign(tps)
        starts = await self.stage.start_positions(consumer, tps)
        for tp in tps:
            at = starts.get(tp)
            if at is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, at)
        if inputs.catch_up:
            self.status.ends = dict(await consumer.end_offsets(tps)) if tps else {}
            self.status.empty = dict.fromkeys(tps, 0)
            await self._check_caught_up(consumer, {})

    async def _check_caught_up(self, consumer: Any, batch: dict[Any, list[Any]]) -> None:
        s = self.status
        if s.caught_up:
            return
        for tp in list(s.empty):
            s.empty[tp] = 0 if batch.get(tp) else s.empty[tp] + 1
            # tansu under-reports ends (services/core/kafka/scan.py): also wait for empty fetches.
            if await consumer.position(tp) >= s.ends.get(tp, 0) and s.empty[tp] >= _EMPTY_ROUNDS:
                del s.empty[tp]
        if not s.empty:
            s.caught_up = True
            self.caught_up.set()

    async def _step(self, consumer: Any, producer: Any, stop: asyncio.Event) -> None:
        if self.lag is not None and self.stage.inputs.group and (
                self._lag_task is None or self._lag_task.done()) and self.lag.due(consumer):
            # Beside the loop, not in it: the lag asks the broker for end offsets and commits
            # (tens of ms on tansu, more under load), and the batch in flight would wait for it.
            self._lag_task = asyncio.create_task(self._update_lag(consumer))
        try:
            # With a batch in flight, take only what is already fetched: if nothing is, that
            # batch is finished at once instead of after a poll timeout.
            wait = 0 if self._pending else 200 if self.status.caught_up else 100
            batch = await consumer.getmany(timeout_ms=wait,
                                           max_records=self.settings.batch_max_records)
        except Exception as exc:
            if not is_infra(exc):
                raise
            await self._infra(exc, stop)
            return
        if not self._reassigned and self.stage.waits_for_assignment and not self._assigned:
            for tp, msgs in batch.items():  # fetched before the assignment was handled: again
                consumer.seek(tp, msgs[0].offset)
            return
        if self._reassigned:
            try:
                await self._finish(consumer, producer)
            except Exception as exc:
                # This batch is dropped below anyway; only the one in flight is read again.
                await self._failed(consumer, exc, {}, stop)
                return
            self._reassigned = False
            await self.stage.on_assigned()
            self._assigned = True
            # Anything fetched before the stage was ready is dropped and read again.
            for tp in consumer.assignment():
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            return
        t0 = time.perf_counter()
        try:
            if batch:
                # Handled while the previous batch's acknowledgements travel (module docstring).
                outs, processed = await self._process(batch)
                waves = self.stage.after_batch(processed)
                floor = self.stage.commit_floor() if self.stage.inputs.group else {}
                await self._finish(consumer, producer)
                self._pending = _Pending(batch, await self._send(producer, outs), waves, floor,
                                         t0)
            else:
                await self._finish(consumer, producer)
                for wave in self.stage.after_batch(0):
                    await self._send_all(producer, wave)
        except Exception as exc:
            await self._failed(consumer, exc, batch, stop)
            return
        if self.status.failing:
            self.status.failing = None
        if self.stage.inputs.catch_up:
            await self._check_caught_up(consumer, batch)

    async def _update_lag(self, consumer: Any) -> None:
        assert self.lag is not None
        try:
            await self.lag.maybe_update(consumer)
        except Exception as exc:  # a metric: the poll itself reports broker failures
            log.debug("%s: consumer lag not updated: %s", self.stage.name, exc)

    async def _finish(self, consumer: Any, producer: Any) -> None:
        """Finish the batch in flight: await its acks, send its waves, commit its offsets."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            await asyncio.gather(*pending.acks)
            for wave in pending.waves:
                await self._send_all(producer, wave)
            if self.stage.inputs.group:
                # A commit refused after a rebalance is not a failure: the partitions' new owner
                # re-reads from the last commit that landed, and downstream dedupes by record id.
                await commit(consumer, {
                    tp: min(msgs[-1].offset + 1,
                            pending.floor.get((tp.topic, tp.partition), 1 << 62))
                    for tp, msgs in pending.batch.items()})
        except BaseException:
            self._pending = pending  # _failed rewinds to its first offsets
            raise
        self.m.batch.labels(self.stage.name).observe(time.perf_counter() - pending.t0)

    async def _failed(self, consumer: Any, exc: Exception, batch: dict[Any, list[Any]],
                      stop: asyncio.Event) -> None:
        """Infrastructure failure while handling or finishing: a stateful stage stops; a
        stateless one re-reads every uncommitted batch (the one in flight and this one)."""
        if not is_infra(exc):
            raise exc
        if not self.stage.retry_on_infra:
            self.status.failing = f"broker failure: {exc}"
            self.m.infra.labels(self.stage.name).inc()
            raise StageStopped(f"{self.stage.name}: broker failure, stopping: {exc}") from exc
        pending, self._pending = self._pending, None
        first: dict[Any, int] = {}
        for b in (pending.batch if pending else {}, batch):
            for tp, msgs in b.items():
                first.setdefault(tp, msgs[0].offset)  # the in-flight batch is the earlier one
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        await self._infra(exc, stop)

    async def _infra(self, exc: BaseException, stop: asyncio.Event) -> None:
        self.status.failing = f"broker failure: {exc}"[:300]
        self.m.infra.labels(self.stage.name).inc()
        log.warning("%s: broker failure, retrying: %s", self.stage.name, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.settings.ingest_retry_after_s)

    async def _process(self, batch: dict[Any, list[Any]]) -> tuple[list[Out], int]:
        """Decode and handle a batch: its outputs (dead letters last) and its message count."""
        by_tp: dict[Any, list[Item]] = {}
        dead: list[tuple[Any, Reject]] = []
        n = 0
        decode = self.stage.decode
        clock = time.perf_counter
        since = clock()
        for tp, msgs in batch.items():
            good = by_tp[tp] = []
            for msg in msgs:
                n += 1
                if clock() - since > YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    since = clock()
                try:
                    good.append(Item(msg, decode(msg)))
                except Exception as exc:
                    if is_infra(exc):
                        raise
                    dead.append((msg, Reject(describe(exc), kind=INVALID)))
        items = list(self.stage.order(by_tp))
        outs: list[Out] = []
        if items:
            for item, outcome in await self._outcomes(items):
                if isinstance(outcome, Reject):
                    dead.append((item.msg, outcome))
                else:
                    outs += outcome
        ok = n - len(dead)
        if ok:
            self.m.records.labels(self.stage.name, "ok").inc(ok)
        for msg, rej in dead:
            outs.append(self._dead_letter(msg, rej))
        return outs, n

    async def _outcomes(self, items: list[Item]) -> list[tuple[Item, Outcome]]:
        got = self.stage.handle(items)
        if inspect.isawaitable(got):
            return await self._outcomes_async(items, got)
        results: list[tuple[Item, Outcome]] = []
        i = 0
        iterator: Iterator[Outcome] = iter(got)
        while i < len(items):
            t = since = time.perf_counter()
            try:
                for outcome in iterator:
                    now = time.perf_counter()
                    if now - t > self.budget_s:
                        outcome = Reject(f"over the per-record work budget of {self.budget_s:g}s "
                                         f"({now - t:.2f}s)", kind=BUDGET)
                    results.append((items[i], outcome))
                    i += 1
                    t = now
                    if now - since > YIELD_EVERY_S:
                        # Between records, so the next record's budget starts after the pause.
                        await asyncio.sleep(0)
                        t = since = time.perf_counter()
                if i < len(items):
                    raise RuntimeError(f"{self.stage.name}: handler gave {i} outcomes for "
                                       f"{len(items)} items")
            except Exception as exc:
                if is_infra(exc):
                    raise
                log.warning("%s: message at %s/%s offset %s not processed: %s", self.stage.name,
                            items[i].msg.topic, items[i].msg.partition, items[i].msg.offset,
                            describe(exc))
                results.append((items[i], Reject(describe(exc), kind=ERROR)))
                i += 1
                if i < len(items):
                    iterator = iter(self.stage.handle(items[i:]))  # type: ignore[arg-type]
        return results

    async def _outcomes_async(self, items: list[Item], first: Awaitable[list[Outcome]]
                              ) -> list[tuple[Item, Outcome]]:
        try:
            return list(zip(items, await first, strict=True))
        except Exception as exc:
            if is_infra(exc) or len(items) == 1:
                raise
        results: list[tuple[Item, Outcome]] = []
        for item in items:  # isolate the culprit one item at a time
            try:
                got = self.stage.handle([item])
                assert inspect.isawaitable(got)
                results.append((item, (await got)[0]))
            except Exception as exc:
                if is_infra(exc):
                    raise
                results.append((item, Reject(describe(exc), kind=ERROR)))
        return results

    def _dead_letter(self, msg: Any, rej: Reject) -> Out:
        self.m.records.labels(self.stage.name, "dead_letter").inc()
        self.m.dead.labels(self.stage.name, rej.kind).inc()
        rid = f"{self.stage.name}/{msg.topic}/{msg.partition}/{msg.offset}"
        letter = DeadLetter(
            rejection_id=rid, stage=self.stage.name, reason_kind=rej.kind,
            rejected_at=datetime.now(UTC), topic=msg.topic, partition=msg.partition,
            offset=msg.offset, partner=rej.partner, feed=rej.feed,
            hub_record_id=rej.hub_record_id, source_id=rej.source_id,
            problems=[Problem(pointer=rej.pointer, reason=rej.reason[:1000])])
        headers = [("stage", self.stage.name.encode()), ("reason", rej.kind.encode()),
                   ("topic", msg.topic.encode()), ("partition", str(msg.partition).encode()),
                   ("offset", str(msg.offset).encode())]
        return Out(self.topics.rejected, letter.model_dump_json(exclude_none=True).encode(),
                   key=rid.encode(), headers=headers)

    async def _send(self, producer: Any, outs: list[Out]) -> list[Any]:
        """Hand ``outs`` to the producer as one record batch per topic partition (order kept
        within each partition, the only order Kafka has); the acknowledgement futures.

        Measured on tansu (issue 12): ``producer.send`` per message cost ~25 µs of CPU, building
        the partition's batch ourselves ~11 µs, and the router sends about five messages per
        record. The partition is the one ``send`` would pick (the producer's own partitioner,
        services/core/kafka.py ``key_partitioner``)."""
        by_tp: dict[tuple[str, int], list[Out]] = {}
        known: set[str] = set()
        for o in outs:
            part = o.partition
            if part is None:
                if o.topic not in known:
                    await producer.partitions_for(o.topic)  # metadata, as send awaits it
                    known.add(o.topic)
                part = producer._partition(o.topic, None, o.key, o.value, o.key, o.value)
            by_tp.setdefault((o.topic, part), []).append(o)
        futures = []
        for (topic, part), msgs in by_tp.items():
            batch = producer.create_batch()
            for o in msgs:
                if batch.append(key=o.key, value=o.value, timestamp=None,
                                headers=o.headers or []) is None:
                    # Full (an empty batch takes any one message): send it, start the next.
                    futures.append(await producer.send_batch(batch, topic, partition=part))
                    batch = producer.create_batch()
                    batch.append(key=o.key, value=o.value, timestamp=None,
                                 headers=o.headers or [])
            futures.append(await producer.send_batch(batch, topic, partition=part))
        return futures

    async def _send_all(self, producer: Any, outs: list[Out]) -> None:
        if outs:
            await asyncio.gather(*await self._send(producer, outs))


async def run_until_first_stops(stop: asyncio.Event, tasks: dict[str, asyncio.Task[Any]]) -> None:
    """Wait for ``stop``; if any task ends first (a stage stopped), set ``stop``, let the others
    wind down and raise, so the service exits and its supervisor restarts it."""
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopper, *tasks.values()],
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        stopper.cancel()
    first = None if stopper in done else next((n for n, t in tasks.items() if t in done), None)
    results = await asyncio.gather(*tasks.values(), return_exceptions=True)
    if first is not None:
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        raise StageStopped(f"stage {first} stopped before the service")
