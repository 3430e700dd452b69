"""On Apache Kafka every producer the hub makes is idempotent: the factory's aiokafka producer gets
a producer id from the broker (InitProducerId), so a retried batch is never written twice. tansu
refuses aiokafka's InitProducerId, so there the factory must leave idempotence off."""

from __future__ import annotations

import asyncio

import pytest

from services.core.config.settings import Settings
from services.core.kafka.clients import make_producer
from tests.conftest import BrokerInfo
from tests.kafka_read import read_topic

pytestmark = pytest.mark.kafka


def test_given_apache_kafka_then_the_factory_producer_is_idempotent_and_writes_once(
        kafka_broker: BrokerInfo, topic_prefix: str) -> None:
    if not kafka_broker.idempotent_producer:
        pytest.skip("the embedded tansu broker refuses aiokafka's idempotent producer")
    settings = Settings(kafka_bootstrap_servers=kafka_broker.bootstrap)
    assert settings.kafka_idempotent_producer, "idempotence is the default setting"
    topic = f"{topic_prefix}.idem"

    async def go() -> int:
        producer = make_producer(settings)
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, f"v{i}".encode(), key=b"k")
            assert producer._txn_manager is not None, "idempotence not enabled"
            return int(producer._txn_manager.producer_id)
        finally:
            await producer.stop()

    producer_id = asyncio.run(go())
    assert producer_id >= 0, "the broker gave no producer id"
    assert [m.value for m in read_topic(settings, topic)] == [f"v{i}".encode() for i in range(20)]


def test_given_tansu_settings_then_the_factory_producer_is_not_idempotent() -> None:
    async def go() -> object:
        producer = make_producer(Settings(kafka_idempotent_producer=False))
        return producer._txn_manager

    assert asyncio.run(go()) is None
