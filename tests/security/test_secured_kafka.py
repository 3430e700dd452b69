"""The secured deployment end to end on a real Apache Kafka: SASL_SSL with SCRAM-SHA-512, a TLS
CA made at test time, the StandardAuthorizer with nothing allowed unless granted, and the ACL
table applied by the project's own ``s115hub acl apply``.

Every party is its own principal: ingest, depersonalise and router; the officer CLI; one partner
(``partner-herts-police``); one tasking group (``group-grp-herts-county``); and a ``rogue`` user
that authenticates but holds no grant. The router runs from a state directory holding only its
audit key, the group tokens and the pinned officer keys: no master key, no data keys.

Each Kafka operation tried is counted as allowed or denied (``OPS``); the last test prints the
totals, which notes/issue-13.md reports. No skip: without Java 17 or the Kafka distribution the
fixture fails (services/core/kafka/local.py says why). It starts its own broker whatever the
session broker is, so it lives outside tests/e2e: CI's tansu pass (e2e and crash tests) would only
run it a second time on the same Apache Kafka.

Over 400 lines because one secured Apache Kafka is started once and every principal's grants are
tried on it.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo.bootstrap import bootstrap
from demo.synthetic import Generator
from services.core.config.county import load_county
from services.core.config.settings import REPO_ROOT
from services.core.crypto.officer_trust import fingerprint, load_log
from services.core.kafka.acls import acl_table, users_of
from services.core.kafka.broker import free_port
from services.core.kafka.clients import kafka_python_common
from tests.kafka_read import wait_for
from tests.security.secured_support import Principals, SecuredCluster, make_tls, secured_kafka

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CONFIG = REPO_ROOT / "deploy" / "hertfordshire"
PARTNER, OTHER_PARTNER = "herts-police", "herts-fire"
GROUP, OTHER_GROUP = "grp-herts-county", "grp-watford"
N = 12
#: (principal kind, operation, resource) -> outcome counts, printed at the end.
OPS: Counter[tuple[str, str]] = Counter()


@dataclass
class Hub:
    cluster: SecuredCluster
    keys_dir: Path  # ingest, depersonalise and the officer: master key, data keys, keyring
    router_dir: Path  # router: audit key, group tokens, officer key file; nothing else
    config_dir: Path
    procs: dict[str, Any]
    ports: dict[str, int]
    tmp: Path

    def url(self, svc: str) -> str:
        return f"http://127.0.0.1:{self.ports[svc]}"


def _start_services(cluster: SecuredCluster, keys_dir: Path, router_dir: Path,
                    logs: Path) -> tuple[dict[str, Any], dict[str, int]]:
    import subprocess
    import sys

    ports = {s: free_port() for s in ("ingest", "depersonalise", "router")}
    port_env = {f"S115HUB_{s.upper()}_PORT": str(p) for s, p in ports.items()}
    procs = {}
    for svc, user, state in (("ingest", "s115-ingest", keys_dir),
                             ("depersonalise", "s115-depersonalise", keys_dir),
                             ("router", "s115-router", router_dir)):
        env = cluster.env(user, S115HUB_STATE_DIR=str(state), **port_env)
        procs[svc] = subprocess.Popen(
            [sys.executable, "-m", f"services.{svc}"], env=env,
            stdout=open(logs / f"{svc}.log", "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    pending = set(procs)
    while pending:
        for svc in list(pending):
            if procs[svc].poll() is not None:
                raise AssertionError(f"{svc} exited during start-up: "
                                     f"{(logs / f'{svc}.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{ports[svc]}/readyz", timeout=1).status_code == 200:
                    pending.discard(svc)
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {pending}: " + " | ".join(
                (logs / f"{s}.log").read_text()[-1500:] for s in pending))
        time.sleep(0.3)
    return procs, ports


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with secured_hub(tmp_path_factory.mktemp("secured")) as h:
        yield h


@contextmanager
def secured_hub(tmp: Path) -> Iterator[Hub]:
    """The secured broker, the table applied, config published, the services running."""
    tls = make_tls()
    principals = Principals()
    admin_pw = principals.add("admin")
    kafka = secured_kafka(tmp / "kafka", tls, admin_pw)
    # The broker starts (tens of seconds on a busy machine) while the hub's keys are made.
    started: list[BaseException | None] = []

    def start() -> None:
        try:
            kafka.start(timeout=150)
            started.append(None)
        except BaseException as exc:  # re-raised below, in the test's thread
            started.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    try:
        ca = tmp / "ca.pem"
        ca.write_text(tls.ca_pem)
        keys_dir, router_dir, config_dir = tmp / "keys", tmp / "router", tmp / "config"
        boot = bootstrap(keys_dir, CONFIG)
        # Least secret: the router's directory gets only what the router reads.
        router_dir.mkdir()
        for name in ("audit-key.pem", "audit-key.pem.pub", "group-tokens.json",
                     "officer-keys.yaml"):
            shutil.copy2(keys_dir / name, router_dir / name)
        (keys_dir / "audit-key.pem").unlink()  # only the router signs the chain
        # The county an officer approves pins the officer key file.
        log = load_log(keys_dir / "officer-keys.yaml")
        assert log is not None
        config_dir.mkdir()
        (config_dir / "county.yaml").write_text(
            (CONFIG / "county.yaml").read_text()
            + f"\nofficer_keys_sha256: \"{fingerprint(log)}\"\n")
        for user in users_of(boot.county):
            principals.add(user)
        principals.add("rogue")
        base = {"S115HUB_CONFIG_DIR": str(config_dir), "S115HUB_TOPIC_REPLICATION": "1",
                "S115HUB_TOPIC_PREFIX": "s115", "S115HUB_KAFKA_IDEMPOTENT_PRODUCER": "true",
                "S115HUB_STATE_DIR": str(keys_dir)}
        cluster = SecuredCluster(kafka, ca, principals, base)
        thread.join(timeout=200)
        assert started, "the secured Kafka did not start within 200 s"
        if started[0] is not None:
            raise started[0]

        # The cluster admin installs the table and the SCRAM users (project code, not a script).
        pw_file = tmp / "scram-passwords.json"
        pw_file.write_text(json.dumps({u: p for u, p in principals.passwords.items()
                                       if u not in ("admin", "rogue")}))
        pw_file.chmod(0o600)
        done = cluster.cli("admin", "acl", "apply", "--config-dir", str(config_dir),
                           "--scram-passwords", str(pw_file))
        assert done.returncode == 0, done.stdout + done.stderr
        _create_user(cluster, "rogue")
        # The officer provisions topics and publishes the county, keys and signed protocols.
        done = cluster.cli("s115-officer", "config", "apply", "--config-dir", str(config_dir),
                           "--protocols-dir", str(keys_dir / "protocols"),
                           "--officer-keys", str(keys_dir / "officer-keys.yaml"))
        assert done.returncode == 0, done.stdout + done.stderr
        OPS["officer", "allowed"] += 1
        logs = tmp / "logs"
        logs.mkdir()
        procs, ports = _start_services(cluster, keys_dir, router_dir, logs)
        h = Hub(cluster, keys_dir, router_dir, config_dir, procs, ports, tmp)
        yield h
    finally:
        for proc in (locals().get("procs") or {}).values():
            if proc.poll() is None:
                proc.terminate()
        # One shared deadline: waiting 20 s per service in turn cost a minute under load.
        deadline = time.monotonic() + 10
        for proc in (locals().get("procs") or {}).values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                proc.kill()
                proc.wait()
        thread.join(timeout=200)
        kafka.stop(timeout=15)


def _create_user(cluster: SecuredCluster, user: str) -> None:
    from kafka.admin import KafkaAdminClient, UserScramCredentialUpsertion

    admin = KafkaAdminClient(**kafka_python_common(cluster.settings("admin")))
    try:
        result = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            user, "SCRAM-SHA-512", cluster.principals.passwords[user])])
        assert result == {user: None}, result
    finally:
        admin.close()


# -- trying operations as a principal ------------------------------------------------------------

def try_write(cluster: SecuredCluster, who: str, user: str, topic: str, *,
              value: bytes = b"{}") -> str:
    """Produce one message to ``topic`` as ``user``: "allowed" or "denied" (and counted).
    Denied means the broker refused authorization; any other failure fails the test."""
    from kafka import KafkaProducer
    from kafka.errors import AuthorizationError

    outcome = "denied"
    producer = KafkaProducer(**kafka_python_common(cluster.settings(user)), acks="all",
                             max_block_ms=10_000, retries=0)
    try:
        producer.send(topic, value).get(timeout=15)
        outcome = "allowed"
    except AuthorizationError:
        pass
    finally:
        producer.close(timeout=5)
    OPS[who, outcome] += 1
    return outcome


def try_login(cluster: SecuredCluster, who: str, user: str, password: str) -> str:
    """Connect as ``user`` with ``password``: "allowed", or "denied" when SCRAM refuses."""
    import asyncio

    from aiokafka.errors import KafkaConnectionError

    from services.core.kafka.clients import make_producer

    async def go() -> str:
        producer = make_producer(cluster.settings(user, password), request_timeout_ms=10_000)
        try:
            await producer.start()
            return "allowed"
        except KafkaConnectionError:  # aiokafka logs "SaslAuthenticationFailed ..."
            return "denied"
        finally:
            await producer.stop()

    outcome = asyncio.run(go())
    OPS[who, outcome] += 1
    return outcome


def try_read(cluster: SecuredCluster, who: str, user: str, topic: str,
             group_id: str | None = None) -> str:
    """Fetch from ``topic`` (committing as ``group_id`` when given): "allowed" or "denied"."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import AuthorizationError

    consumer = KafkaConsumer(**kafka_python_common(cluster.settings(user)), group_id=group_id,
                             enable_auto_commit=False, auto_offset_reset="earliest")
    outcome = "denied"
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.position(tp, timeout_ms=10_000)  # ListOffsets: DESCRIBE is enough for this
        # READ guards the fetch, whose answer may take several polls on a loaded machine (one
        # 500 ms poll once let a denied read pass as allowed): allowed means a whole window of
        # polls without an authorization error; a denial raises at the first fetch answer.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=500)
        if group_id:
            consumer.commit()
        outcome = "allowed"
    except AuthorizationError:
        pass
    finally:
        consumer.close()
    OPS[who, outcome] += 1
    return outcome


# -- the tests ---------------------------------------------------------------------------------


def test_acl_apply_installed_exactly_the_table(hub: Hub) -> None:
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePatternFilter,
        ResourceType,
    )

    admin = KafkaAdminClient(**kafka_python_common(hub.cluster.settings("admin")))
    try:
        acls, _ = admin.describe_acls(ACLFilter(
            principal=None, host="*", operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                   ACLResourcePatternType.ANY)))
    finally:
        admin.close()
    installed = {(a.principal, a.operation.name.lower(), a.resource_pattern.resource_type.name
                  .lower(), a.resource_pattern.resource_name,
                  a.resource_pattern.pattern_type.name.lower()) for a in acls}
    table = {(g.principal, g.operation, g.resource, g.name, g.pattern)
             for g in acl_table(load_county(hub.config_dir / "county.yaml"), "s115")}
    assert installed == table
    assert all(a.permission_type == ACLPermissionType.ALLOW for a in acls)


def test_the_pipeline_delivers_under_each_services_own_principal(hub: Hub) -> None:
    """partner-herts-police publishes to its inbound topic; ingest, depersonalise and router,
    each as itself, carry the records to the county group, which reads them as itself."""
    from services.core.areas import AreaIndex

    gen = Generator(AreaIndex.load(REPO_ROOT / "deploy" / "data" / "boundaries"), seed=13)
    topic = f"s115.inbound.{PARTNER}"
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python_common(hub.cluster.settings(f"partner-{PARTNER}")),
                             acks="all", max_block_ms=15_000)
    try:
        futures, names = [], []
        for _ in range(N):
            _, rec = gen.record("police")
            names.append(rec["victim_name"])
            futures.append(producer.send(topic, json.dumps(rec).encode(),
                                         key=rec["source_id"].encode(),
                                         headers=[("feed", b"police")]))
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close()
    OPS["partner", "allowed"] += N
    got = wait_for(lambda: delivered(hub, GROUP), lambda recs: len(recs) >= N, timeout=120,
                   what=f"{N} records delivered to {GROUP}")
    OPS["group", "allowed"] += 1
    assert all(r["protocol"].startswith("police-district@") for r in got)
    text = json.dumps(got)
    assert not [n for n in names if n in text], "plaintext personal data delivered"
    assert all("address" not in r["fields"] for r in got)
    # The router ran without the master key or any data key.
    assert not (hub.router_dir / "master.key").exists()
    assert not (hub.router_dir / "datakeys").exists()
    assert hub.procs["router"].poll() is None


def delivered(hub: Hub, group: str) -> list[dict[str, Any]]:
    """Everything on the group's delivery topic, read as the group with its own consumer group
    (committing, as a real subscriber would)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = f"s115.deliver.{group}"
    consumer = KafkaConsumer(**kafka_python_common(hub.cluster.settings(f"group-{group}")),
                             group_id=f"group-{group}.analyst", auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        assert parts, f"{topic} has no partitions visible to group-{group}"
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        consumer.seek_to_beginning()
        out = [json.loads(m.value) for m in consumer]
        if out:
            consumer.commit()
        return out
    finally:
        consumer.close()


def test_every_officer_command_works_under_the_officer_principal(hub: Hub) -> None:
    c = hub.cluster
    officer = "s115-officer"
    ran: list[str] = []

    def cli(*args: str, ok: int = 0) -> str:
        done = c.cli(officer, *args)
        assert done.returncode == ok, f"{args}: {done.stdout}{done.stderr}"
        ran.append(" ".join(args[:2]))
        OPS["officer", "allowed"] += 1
        return done.stdout

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    # config apply again (idempotent: topics exist; creating one needs CREATE+DESCRIBE).
    out = cli("config", "apply", "--config-dir", str(hub.config_dir), "--protocols-dir",
              str(hub.keys_dir / "protocols"), "--officer-keys",
              str(hub.keys_dir / "officer-keys.yaml"))
    assert "published" in out
    assert "feed herts-police/police: released under police-district@1" in cli(
        "protocol", "status")
    # A bad record from the partner: dead-lettered, listed and replayed corrected by the officer.
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python_common(c.settings(f"partner-{PARTNER}")),
                             acks="all", max_block_ms=15_000)
    gen = Generator(_areas(), seed=21)
    _, good = gen.record("police")
    bad = {**good, "category": "not-a-category"}
    try:
        producer.send(f"s115.inbound.{PARTNER}", json.dumps(bad).encode(),
                      headers=[("feed", b"police")]).get(timeout=30)
    finally:
        producer.close()
    OPS["partner", "allowed"] += 1
    listed = wait_for(lambda: c.cli(officer, "dlq", "list", "--json").stdout,
                      lambda out: '"/category"' in out, timeout=60,
                      what="the dead letter in dlq list")
    OPS["officer", "allowed"] += 1
    ran.append("dlq list")
    letter = [json.loads(line) for line in listed.splitlines()
              if line.strip() and json.loads(line).get("problems", [{}])[0].get("pointer")
              == "/category"][-1]
    fixes = hub.tmp / "fixes.ndjson"
    fixes.write_text(json.dumps({"rejection_id": letter["rejection_id"], "record": good}))
    assert "1 replayed" in cli("dlq", "replay", "--corrected", str(fixes))
    csv = hub.tmp / "police-uk.csv"
    lines = (REPO_ROOT / "deploy" / "data" / "police-uk" / "2018-01-essex-street.csv"
             ).read_text().splitlines()[:21]
    csv.write_text("\n".join(lines) + "\n")
    assert "imported police-uk.csv" in cli("import", "police-uk", str(csv), "--partner", PARTNER)
    out = cli("protocol", "replay", "--since", since, "--feed", "police")
    assert "sent 0" not in out, out
    assert cli("partner", "add", OTHER_PARTNER).startswith(f"partner {OTHER_PARTNER} key")
    wait_for(lambda: c.cli(officer, "audit", "query", "--kind", "config").stdout,
             lambda out: "partner.added" in out, timeout=60,
             what="the officer's change chained on the audit topic")
    OPS["officer", "allowed"] += 1
    ran.append("audit query")
    assert cli("audit", "verify", "--public-key",
               str(hub.router_dir / "audit-key.pem.pub")).startswith("OK topic s115.audit")
    # `status` reads durable facts (topics and the chain), not the services (issue 16).
    status = cli("status", ok=0)
    assert GROUP in status
    assert PARTNER in status
    print("officer commands run:", ran)


def _areas() -> Any:
    from services.core.areas import AreaIndex

    return AreaIndex.load(REPO_ROOT / "deploy" / "data" / "boundaries")


INTERNAL = ("s115.raw.police", "s115.shared", "s115.rejected", "s115.config", "s115.audit",
            "s115.audit.facts", "s115.audit.officer", "s115.router.hotspot-state",
            f"s115.deliver.{GROUP}", f"s115.hotspots.{GROUP}")


def test_a_partner_cannot_write_another_partners_inbound_topic_or_any_internal_topic(
        hub: Hub) -> None:
    user = f"partner-{PARTNER}"
    assert try_write(hub.cluster, "partner", user, f"s115.inbound.{PARTNER}",
                     value=b"not json: dead-lettered") == "allowed"
    for topic in (f"s115.inbound.{OTHER_PARTNER}", *INTERNAL):
        assert try_write(hub.cluster, "partner", user, topic) == "denied", topic
    for topic in (f"s115.inbound.{PARTNER}", "s115.shared", f"s115.deliver.{GROUP}"):
        assert try_read(hub.cluster, "partner", user, topic) == "denied", topic


def test_a_group_cannot_read_another_groups_topics(hub: Hub) -> None:
    user = f"group-{GROUP}"
    # The README's `s115hub subscribe` as the group itself (its topic holds the pipeline's
    # records by now, so --limit 1 returns).
    done = hub.cluster.cli(user, "subscribe", GROUP, "--limit", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"hub_record_id"' in done.stdout
    OPS["group", "allowed"] += 1
    assert try_read(hub.cluster, "group", user, f"s115.hotspots.{GROUP}",
                    group_id=f"group-{GROUP}.page") == "allowed"
    for topic in (f"s115.deliver.{OTHER_GROUP}", f"s115.hotspots.{OTHER_GROUP}", "s115.shared",
                  "s115.raw.police", "s115.audit", "s115.config", f"s115.inbound.{PARTNER}"):
        assert try_read(hub.cluster, "group", user, topic) == "denied", topic
    # Its own topic, but under another principal's consumer group (or another group's).
    for gid in ("s115.router", f"group-{OTHER_GROUP}.x", f"group-{GROUP}-east.x"):
        assert try_read(hub.cluster, "group", user, f"s115.deliver.{GROUP}",
                        group_id=gid) == "denied", gid
    for topic in (f"s115.deliver.{GROUP}", f"s115.deliver.{OTHER_GROUP}"):
        assert try_write(hub.cluster, "group", user, topic) == "denied", topic


def test_a_rogue_principal_cannot_write_shared_deliver_audit_or_config(hub: Hub) -> None:
    for topic in ("s115.shared", f"s115.deliver.{GROUP}", f"s115.deliver.{OTHER_GROUP}",
                  f"s115.hotspots.{GROUP}", "s115.audit", "s115.audit.facts",
                  "s115.audit.officer", "s115.config",
                  "s115.raw.police", f"s115.inbound.{PARTNER}"):
        assert try_write(hub.cluster, "rogue", "rogue", topic) == "denied", topic
    for topic in ("s115.config", "s115.audit", f"s115.deliver.{GROUP}"):
        assert try_read(hub.cluster, "rogue", "rogue", topic) == "denied", topic
    # A known user with a wrong password does not get in at all; the right one does.
    user = f"partner-{PARTNER}"
    assert try_login(hub.cluster, "rogue", user, "wrong") == "denied"
    assert try_login(hub.cluster, "partner", user,
                     hub.cluster.principals.passwords[user]) == "allowed"


def test_services_may_not_step_outside_their_role(hub: Hub) -> None:
    """The grants are per role: depersonalise cannot deliver to a group, the router cannot write
    shared records or read raw ones, ingest cannot write the chain, the officer cannot write
    the chain or deliveries."""
    c = hub.cluster
    for who, user, topic in (("service", "s115-depersonalise", f"s115.deliver.{GROUP}"),
                             ("service", "s115-depersonalise", "s115.audit"),
                             ("service", "s115-router", "s115.shared"),
                             ("service", "s115-ingest", "s115.audit"),
                             ("service", "s115-ingest", "s115.shared"),
                             ("officer", "s115-officer", "s115.audit"),
                             ("officer", "s115-officer", "s115.audit.facts"),
                             ("service", "s115-router", "s115.audit.officer"),
                             ("service", "s115-depersonalise", "s115.audit.officer"),
                             ("officer", "s115-officer", f"s115.deliver.{GROUP}")):
        assert try_write(c, who, user, topic) == "denied", (user, topic)
    assert try_read(c, "service", "s115-router", "s115.raw.police") == "denied"
    assert try_read(c, "service", "s115-depersonalise", f"s115.deliver.{GROUP}") == "denied"


def test_zz_operation_counts(hub: Hub) -> None:
    """The totals the closing note reports (this module's tests ran in file order)."""
    allowed = sum(n for (_, o), n in OPS.items() if o == "allowed")
    denied = sum(n for (_, o), n in OPS.items() if o == "denied")
    print(f"\nsecured Kafka operations: {allowed} allowed, {denied} denied; "
          + ", ".join(f"{w} {o} {n}" for (w, o), n in sorted(OPS.items())))
    assert denied >= 30
    assert allowed >= N
    for svc, proc in hub.procs.items():
        assert proc.poll() is None, f"{svc} stopped"
