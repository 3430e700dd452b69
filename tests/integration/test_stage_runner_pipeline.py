"""The stage runner pipelines batches (handles batch N+1 while N's acknowledgements travel) but
keeps the order of effects on the broker: N's outputs, then N's ``after_batch`` wave, then N's
commit, then N+1's outputs. On a real broker, with small batches so many are in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from services.core.config.settings import Settings
from services.core.kafka.clients import ensure_topics, kafka_python_common, make_producer
from services.core.kafka.stage_runner import Inputs, Item, Out, Outcome, Stage, StageRunner
from services.core.kafka.topics import TopicSpec
from services.core.ops.metrics import ServiceMetrics
from tests.conftest import BrokerInfo
from tests.kafka_read import read_topic

pytestmark = pytest.mark.kafka

RECORDS = 1200


class Tagger(Stage):
    """Each input becomes ``<partition>:<offset>`` on one output partition; after each batch a
    wave ``wave:<records handled so far>``, so the reader can tell which batch a wave closes."""

    name = "tagger"
    waits_for_assignment = False

    def __init__(self, inputs: Inputs, out: str) -> None:
        self.inputs = inputs
        self.out = out
        self.handled = 0

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        for item in items:
            self.handled += 1
            yield [Out(self.out, f"{item.msg.partition}:{item.msg.offset}".encode(), partition=0)]

    def after_batch(self, processed: int) -> list[list[Out]]:
        if not processed:
            return []
        return [[Out(self.out, f"wave:{self.handled}".encode(), partition=0)]]


def committed(settings: Settings, group: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    # A consumer that names the group but never subscribes reads its commits without joining.
    consumer = KafkaConsumer(**kafka_python_common(settings), group_id=group,
                             enable_auto_commit=False)
    try:
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in (0, 1))
    finally:
        consumer.close()


def test_given_pipelined_batches_then_each_wave_follows_its_own_batch_and_all_commit_once(
        kafka_broker: BrokerInfo, topic_prefix: str) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_broker.bootstrap, topic_prefix=topic_prefix,
                        kafka_idempotent_producer=kafka_broker.idempotent_producer,
                        batch_max_records=100)
    src, out, group = f"{topic_prefix}.in", f"{topic_prefix}.out", f"{topic_prefix}-g"
    ensure_topics(settings, [TopicSpec(src, 2, {}), TopicSpec(out, 1, {})])

    async def go() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            futs = [await producer.send(src, b"x", partition=i % 2) for i in range(RECORDS)]
            await asyncio.gather(*futs)
        finally:
            await producer.stop()
        stage = Tagger(Inputs((src,), group), out)
        stop = asyncio.Event()
        r = StageRunner(settings, stage, ServiceMetrics("test"), service="test")
        task = asyncio.create_task(r.run(stop))
        deadline = time.monotonic() + 120
        try:
            while await asyncio.to_thread(committed, settings, group, src) < RECORDS:
                assert not task.done(), "the runner stopped"
                assert time.monotonic() < deadline, "input not committed within 120 s"
                await asyncio.sleep(0.3)
        finally:
            stop.set()
            await task

    asyncio.run(go())
    values = [m.value.decode() for m in read_topic(settings, out)]
    data = [v for v in values if not v.startswith("wave:")]
    assert sorted(data) == sorted({f"{p}:{o}" for p in (0, 1) for o in range(RECORDS // 2)})
    assert len(data) == RECORDS  # exactly once: no re-read, no lost record
    waves = [(i, int(v.split(":")[1])) for i, v in enumerate(values) if v.startswith("wave:")]
    assert len(waves) > 2, "the batches were not split, so nothing was pipelined"
    for pos, handled in waves:
        # Everything its batch produced is before it, nothing of a later batch is.
        assert sum(1 for v in values[:pos] if not v.startswith("wave:")) == handled
