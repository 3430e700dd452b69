"""The one place that turns Settings into Kafka clients (aiokafka for services, kafka-python for the
admin client and the CLI), so SASL/TLS works the same everywhere."""

from __future__ import annotations

import logging
import random
import ssl
from functools import lru_cache
from typing import Any

from services.core.config.errors import ConfigError
from services.core.config.settings import Settings
from services.core.kafka.topics import TopicSpec

log = logging.getLogger(__name__)


def _security(settings: Settings) -> dict[str, Any]:
    kw: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_sasl_mechanism:
        try:
            password = settings.resolved_sasl_password()
        except OSError as exc:
            raise ConfigError(f"cannot read the SASL password file: {exc.strerror}",
                              file=str(settings.kafka_sasl_password_file)) from None
        if not settings.kafka_sasl_username or not password:
            # Otherwise the clients fail later with an opaque handshake error.
            raise ConfigError(f"{settings.kafka_sasl_mechanism} needs S115HUB_KAFKA_SASL_USERNAME "
                              "and S115HUB_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)")
        kw["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kw["sasl_plain_username"] = settings.kafka_sasl_username
        kw["sasl_plain_password"] = password
    return kw


def aiokafka_common(settings: Settings) -> dict[str, Any]:
    kw = {"bootstrap_servers": settings.kafka_bootstrap_servers, **_security(settings)}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    return kw


def kafka_python_common(settings: Settings) -> dict[str, Any]:
    kw = {"bootstrap_servers": settings.kafka_bootstrap_servers, **_security(settings)}
    if settings.kafka_ssl_cafile:
        kw["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return kw


@lru_cache(maxsize=8192)
def _key_hash(key: bytes) -> int:
    from aiokafka.partitioner import murmur2

    return int(murmur2(key)) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (Java-compatible murmur2, so the partition of a key is the
    same as from any other Kafka client), with the hash of recent keys remembered: the router
    sends each record under the same key to several group topics and to the audit facts, and the
    pure-Python murmur2 was ~10% of its CPU (py-spy, notes/issue-7.md). A one-partition topic
    (audit facts, hot-spot state) needs no hash at all."""
    if len(all_partitions) == 1:
        return all_partitions[0]
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - spreading load only
    return all_partitions[_key_hash(key) % len(all_partitions)]


def make_producer(settings: Settings, **overrides: Any) -> Any:
    """An aiokafka producer that only acknowledges what every in-sync replica has."""
    from aiokafka import AIOKafkaProducer

    kw: dict[str, Any] = {
        **aiokafka_common(settings),
        "acks": "all",
        "enable_idempotence": settings.kafka_idempotent_producer,
        "linger_ms": 5,
        "max_batch_size": 512 * 1024,
        "compression_type": None,
        "partitioner": key_partitioner,
    }
    kw.update(overrides)
    return AIOKafkaProducer(**kw)


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides: Any) -> Any:
    from aiokafka import AIOKafkaConsumer

    kw: dict[str, Any] = {
        **aiokafka_common(settings),
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "rebalance_timeout_ms": settings.kafka_rebalance_timeout_ms,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": 1000,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        # tansu holds a fetch for the whole max wait even when data arrives meanwhile (measured:
        # 500 ms wait -> ~115 ms median per hop, 20 ms -> ~11 ms), and a record crosses three
        # hops. Apache Kafka answers early anyway, so a short wait only adds idle fetches; on
        # tansu each empty fetch costs the broker CPU (settings.kafka_fetch_max_wait_ms).
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
    }
    kw.update(overrides)
    return AIOKafkaConsumer(*topics, **kw)


async def commit(consumer: Any, offsets: dict[Any, int] | None = None) -> bool:
    """Commit the consumer's positions; False when the group rebalanced under it.

    A refused commit is not a failure of the stage: the partitions' new owner starts from the
    last commit that did land and re-emits what followed, which downstream dedupes by hub record
    id. Measured on Apache Kafka under load: a rebalance mid-batch raised CommitFailedError
    (IllegalGeneration) and, uncaught, stopped depersonalise; tansu rarely rebalances."""
    from aiokafka.errors import CommitFailedError, RebalanceInProgressError

    try:
        await consumer.commit(offsets)
        return True
    except (CommitFailedError, RebalanceInProgressError) as exc:
        log.warning("commit refused after a rebalance; the new owner re-reads: %s", exc)
        return False


async def topic_partitions(consumer: Any, topic: str) -> list[int]:
    """The partitions of ``topic`` (empty when it does not exist), asked of the broker now.

    aiokafka's ``consumer.topics()`` fetches every topic's metadata into a fresh object and keeps
    only the names, so ``partitions_for_topic`` afterwards sees only what the client tracked
    already. tansu answers the client's own empty-list metadata request with every topic, which
    hid this; Apache Kafka answers it with none."""
    cluster = await consumer._client.fetch_all_metadata()
    return sorted(cluster.partitions_for_topic(topic) or ())


def ensure_topics(settings: Settings, specs: list[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names created. Safe to repeat."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**kafka_python_common(settings), client_id="s115hub-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, settings.topic_replication, topic_configs=s.configs)
            for s in specs if s.name not in existing
        ]
        created: list[str] = []
        for topic in new:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process won the race; that is the idempotent outcome
        return created
    finally:
        admin.close()
