"""Topic names, their declared shapes, and their provisioning before anything reads them.

Start-up order must not matter. A consumer that subscribes to a topic that does not exist yet
makes the broker auto-create it with the broker's defaults (Apache Kafka: ``num.partitions``;
measured here: ``s115.config`` with four partitions, of which every service reads partition 0,
so ingest never became ready). So every service calls :func:`provision_topics` before its first
read: it creates what is missing with the declared partitions and configs, then checks what
exists, and refuses with one clear message if a topic's shape is wrong.

Group and partner topics are provisioned by whoever publishes the config naming them
(``s115hub config apply`` and ``up``), before it is published, so no service reads them first.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.feeds import FEED_NAMES
from services.core.config.settings import Settings
from services.core.kafka.errors import BrokerUnavailable, TopicShapeError


@dataclass(frozen=True)
class Topics:
    prefix: str

    def consumer_group(self, name: str) -> str:
        """Consumer groups carry the prefix too, so hubs sharing a broker never join each
        other's groups (and a rebalance in one cannot stall another)."""
        return f"{self.prefix}.{name}"

    def raw(self, feed: str) -> str:
        return f"{self.prefix}.raw.{feed}"

    def inbound(self, partner: str) -> str:
        return f"{self.prefix}.inbound.{partner}"

    def deliver(self, group: str) -> str:
        return f"{self.prefix}.deliver.{group}"

    def hotspots(self, group: str) -> str:
        return f"{self.prefix}.hotspots.{group}"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}.rejected"

    @property
    def shared(self) -> str:
        return f"{self.prefix}.shared"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def audit_facts(self) -> str:
        """Unchained audit facts from every producer; one chainer turns them into s115.audit."""
        return f"{self.prefix}.audit.facts"

    @property
    def audit_officer(self) -> str:
        """Configuration facts from the officer's CLI: the only path that may claim a config
        change (only the officer principal may write it under the ACLs)."""
        return f"{self.prefix}.audit.officer"

    @property
    def config(self) -> str:
        return f"{self.prefix}.config"

    @property
    def hotspot_state(self) -> str:
        """The router's hot-spot window state and the shared offsets it covers (compacted)."""
        return f"{self.prefix}.router.hotspot-state"

    @property
    def raw_all(self) -> list[str]:
        return [self.raw(f) for f in FEED_NAMES]


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


def topic_specs(settings: Settings, groups: Sequence[str],
                partners: Sequence[str] = ()) -> list[TopicSpec]:
    t = topics_for(settings)
    n = settings.topic_partitions
    raw_cfg = {"retention.ms": str(settings.raw_retention_ms)}
    specs = [TopicSpec(t.raw(f), n, raw_cfg) for f in FEED_NAMES]
    specs += [TopicSpec(t.inbound(p), n, raw_cfg) for p in partners]
    specs += [
        TopicSpec(t.shared, n, {}),
        TopicSpec(t.rejected, 1, {}),
        # The audit chain must keep its order, so one partition; never deleted by retention.
        TopicSpec(t.audit, 1, {"retention.ms": "-1"}),
        # Facts are chained within seconds; kept a week so a stopped chainer can catch up.
        TopicSpec(t.audit_facts, 1, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(t.audit_officer, 1, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(t.config, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.hotspot_state, 1, {"cleanup.policy": "compact"}),
    ]
    for g in groups:
        specs += [TopicSpec(t.deliver(g), n, {}), TopicSpec(t.hotspots(g), 1, {})]
    return specs


def base_topic_specs(settings: Settings) -> list[TopicSpec]:
    """The topics every hub has whatever its county: what each service reads at start-up."""
    return topic_specs(settings, [], [])


def shape_problems(spec: TopicSpec, partitions: int, configs: dict[str, str]) -> list[str]:
    """Why an existing topic cannot serve as ``spec``. Pure, so it is tested without a broker.

    Checked: a topic declared with one partition has exactly one (the audit chain, the config
    and the hot-spot state depend on a single order; the services read partition 0 of the
    config); ``cleanup.policy`` as declared (a compacted config topic must not lose keys to
    retention, a deleting one must not keep only the latest); and the audit chain's
    ``retention.ms=-1`` (never deleted). A keyed topic with more or fewer partitions than
    declared is accepted: Kafka operators add partitions, and every consumer reads them all.
    Other retention settings are left to the operator and to retention enforcement.
    """
    problems = []
    if spec.partitions == 1 and partitions != 1:
        problems.append(f"has {partitions} partitions, must have exactly 1 (its order is "
                        "the hub's order)")
    want_policy = spec.configs.get("cleanup.policy", "delete")
    have_policy = configs.get("cleanup.policy")
    if have_policy is not None and have_policy != want_policy:
        problems.append(f"has cleanup.policy={have_policy}, must be {want_policy}")
    if spec.configs.get("retention.ms") == "-1":
        have = configs.get("retention.ms")
        if have is not None and have != "-1":
            problems.append(f"has retention.ms={have}, must be -1 (never deleted)")
    return problems


def provision_topics(settings: Settings, specs: Sequence[TopicSpec], *,
                     wait_for_broker: float = 0.0) -> list[str]:
    """Create the missing topics with their declared shape, then check every topic's shape.

    Returns the names created. Raises TopicShapeError naming each wrong topic and what to do, or
    BrokerUnavailable if the broker does not answer within ``wait_for_broker`` seconds."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + wait_for_broker
    while True:
        try:
            return _provision(settings, specs)
        except (KafkaError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers} "
                    f"({type(exc).__name__}: {exc}); check the broker is running and "
                    "S115HUB_KAFKA_BOOTSTRAP_SERVERS") from None
            time.sleep(1.0)


def broker_answers(bootstrap_servers: str, timeout: float = 3.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection. kafka-python's admin client takes
    a minute to give up on a broker that is not there; an officer should not wait that long."""
    import socket

    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                          timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def _provision(settings: Settings, specs: Sequence[TopicSpec]) -> list[str]:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import (
        BrokerResponseError,
        KafkaConnectionError,
        TopicAlreadyExistsError,
        TopicAuthorizationFailedError,
    )

    from services.core.kafka.clients import kafka_python_common

    if not broker_answers(settings.kafka_bootstrap_servers):
        raise KafkaConnectionError("no bootstrap server accepts connections")
    admin = KafkaAdminClient(**kafka_python_common(settings), client_id="s115hub-admin")
    try:
        existing = set(admin.list_topics())
        created: list[str] = []
        unseen: set[str] = set()
        for s in specs:
            if s.name in existing:
                continue
            try:
                admin.create_topics([NewTopic(s.name, s.partitions, settings.topic_replication,
                                              topic_configs=s.configs)])
                created.append(s.name)
            except TopicAlreadyExistsError:
                pass  # another service won the race; its shape is checked below
            except TopicAuthorizationFailedError:
                # Under ACLs a principal lists only the topics it may describe, and READ or
                # WRITE imply DESCRIBE: a topic hidden from it is one it never uses. The officer
                # (`config apply`) provisions it; this service has nothing to check there.
                unseen.add(s.name)
            except BrokerResponseError as exc:
                # The broker answered, so this is not "unavailable": with ACLs, only some
                # principals may create topics (deploy/README.md).
                raise TopicShapeError(
                    f"topic {s.name} does not exist and could not be created "
                    f"({type(exc).__name__}); create it as `s115hub config apply` does, or "
                    "allow this principal to create topics") from None
        problems = _check(admin, [s for s in specs if s.name not in unseen])
    finally:
        admin.close()
    if problems:
        raise TopicShapeError(
            "; ".join(problems) + ". Refusing to start on a topic of the wrong shape (was it "
            "auto-created by the broker before the hub provisioned it?): delete and let the "
            "hub re-create it, or fix it with kafka-configs / kafka-topics")
    return created


def _check(admin: Any, specs: Sequence[TopicSpec]) -> list[str]:
    from kafka.admin import ConfigResource, ConfigResourceType

    by_name = {s.name: s for s in specs}
    # A topic created a moment ago may not have its metadata everywhere yet (error code set,
    # no partitions): it was created with the declared shape, so there is nothing to check.
    partitions = {str(t.get("name", t.get("topic"))): len(t["partitions"])
                  for t in admin.describe_topics(list(by_name))
                  if not t.get("error_code") and t["partitions"]}
    configs: dict[str, dict[str, str]] = {}
    try:
        answer = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in by_name])
        configs = _configs_of(answer)
    except Exception:  # a broker without DescribeConfigs: partitions are still checked
        configs = {}
    problems = []
    for name, spec in by_name.items():
        if name not in partitions:
            continue
        for why in shape_problems(spec, partitions[name], configs.get(name, {})):
            problems.append(f"topic {name} {why}")
    return problems


def _configs_of(answer: Any) -> dict[str, dict[str, str]]:
    """kafka-python 3 answers ``{"topic": {name: {key: value | {"value": ...}}}}``."""
    out: dict[str, dict[str, str]] = {}
    topics = answer.get("topic", {}) if isinstance(answer, dict) else {}
    for name, entries in topics.items():
        flat: dict[str, str] = {}
        for key, value in (entries or {}).items():
            if isinstance(value, dict):
                value = value.get("value")
            if value is not None:
                flat[str(key)] = str(value)
        out[str(name)] = flat
    return out


def provision_or_exit(settings: Settings, service: str) -> None:
    """A service's first act: its topics exist with the right shape, or it stops with one line
    (exit code 2, so a supervisor's restart policy can tell it from a crash)."""
    from services.core.errors import HubError

    try:
        provision_topics(settings, base_topic_specs(settings),
                         wait_for_broker=settings.startup_broker_wait_s)
    except HubError as exc:
        print(f"{service}: refusing to start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
