"""End to end on a real broker: records flow through a whole hub, then every record on every
``s115.deliver.*`` topic has exactly one disclosure event on ``s115.audit`` (and every disclosure
event its delivery), config changes are on the same chain, and ``s115hub audit verify`` passes.
Tampering with a copy of the chain on the broker is caught at the right position, and an
exported bundle verifies offline until it is altered."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.cli.main import app
from services.core.areas import AreaIndex
from services.core.audit.chain import AuditEvent, event_hash, verify_chain
from services.core.audit.key import load_audit_key
from services.core.config.settings import REPO_ROOT, Settings
from services.core.crypto.canonical import canonical_bytes
from services.core.kafka.clients import ensure_topics
from services.core.kafka.topics import TopicSpec
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PER_FEED = 12


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Any:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("audit"),
                  REPO_ROOT / "deploy" / "hertfordshire")
    yield h
    h.stop()


def _settings(hub: LocalHub) -> Settings:
    assert hub.settings is not None
    return hub.settings


def _deliveries(hub: LocalHub) -> list[tuple[str, str, bytes]]:
    """(group, hub record id, value) of every message on every group's deliver topic."""
    s = _settings(hub)
    assert hub.boot is not None
    return [(g.id, m.key.decode(), m.value) for g in hub.boot.county.groups
            for m in read_topic(s, f"{s.topic_prefix}.deliver.{g.id}")]


def _chain(hub: LocalHub) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    s = _settings(hub)
    events: list[dict[str, Any]] = []
    cps: list[dict[str, Any]] = []
    for m in read_topic(s, f"{s.topic_prefix}.audit"):
        (cps if m.key.startswith(b"checkpoint/") else events).append(json.loads(m.value))
    return events, cps


@pytest.fixture(scope="module")
def flowed(hub: LocalHub) -> dict[str, Any]:
    """Publish records of all four feeds and wait until the chain has caught up and the head
    is signed."""
    s = _settings(hub)
    assert hub.boot is not None
    gen = Generator(AreaIndex.load(s.boundaries_dir), seed=6)
    accepted = 0
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for feed in ("police", "fire", "health", "council"):
            for _ in range(PER_FEED):
                ward, rec = gen.record(feed)
                r = client.post(f"/v1/feeds/{feed}/records", json=rec, headers={
                    "X-API-Key": hub.boot.api_keys[gen.partner_for(feed, ward)]})
                assert r.status_code == 202, r.text
                accepted += 1
    # Deliveries settle (two equal reads in a row), then the chain must cover them all.
    seen: list[int] = []

    def settled(d: list[Any]) -> bool:
        seen.append(len(d))
        return len(d) > 0 and len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]

    deliveries = wait_for(lambda: _deliveries(hub), settled, timeout=120, interval=2,
                          what="deliveries to stop growing")

    def covered(chain: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> bool:
        events, cps = chain
        n = sum(1 for e in events if e["kind"] == "disclosure")
        return n >= len(deliveries) and bool(cps) and cps[-1]["seq"] == events[-1]["seq"]

    events, cps = wait_for(lambda: _chain(hub), covered, timeout=60, interval=1,
                           what="disclosure events for every delivery and a checkpoint at head")
    return {"accepted": accepted, "deliveries": deliveries, "events": events, "checkpoints": cps}


def test_every_delivery_has_exactly_one_audit_event_and_every_event_its_delivery(
        flowed: dict[str, Any]) -> None:
    deliveries: list[tuple[str, str, bytes]] = flowed["deliveries"]
    disclosures = [e for e in flowed["events"] if e["kind"] == "disclosure"]
    per_pair = Counter((e["recipient"], e["hub_record_id"]) for e in disclosures)
    delivered = Counter((g, rid) for g, rid, _ in deliveries)
    assert len(deliveries) > 0
    assert max(delivered.values()) == 1, "a record reached a group twice"
    not_audited = [p for p in delivered if per_pair[p] == 0]
    twice = [p for p, n in per_pair.items() if n > 1]
    no_delivery = [p for p in per_pair if p not in delivered]
    print(f"reconciliation: {flowed['accepted']} records accepted, {len(deliveries)} deliveries, "
          f"{len(disclosures)} disclosure events, {len(flowed['events'])} events in all, "
          f"{len(flowed['checkpoints'])} checkpoints")
    assert not not_audited, f"deliveries with no audit event: {not_audited[:5]}"
    assert not twice, f"deliveries audited more than once: {twice[:5]}"
    assert not no_delivery, f"audit events with no delivery: {no_delivery[:5]}"


def test_each_disclosure_event_describes_what_was_delivered(flowed: dict[str, Any]) -> None:
    by_pair = {(e["recipient"], e["hub_record_id"]): e for e in flowed["events"]
               if e["kind"] == "disclosure"}
    for group, rid, value in flowed["deliveries"]:
        ev = by_pair[(group, rid)]
        rec = json.loads(value)
        # The digest is recomputable by an inspector holding the delivered message.
        assert ev["payload_digest"] == hashlib.sha256(canonical_bytes(rec)).hexdigest()
        assert ev["protocol"] == rec["protocol"]
        assert (ev["partner"], ev["feed"]) == (rec["partner"], rec["feed"])
        assert set(ev["fields"]) == set(rec["fields"]), "every released field must be named"
        assert "unknown" not in ev["fields"].values(), ev["fields"]
        assert ev["lawful_basis"], "a disclosure must state its lawful basis"


def test_config_changes_are_on_the_same_chain(hub: LocalHub, flowed: dict[str, Any]) -> None:
    assert hub.boot is not None
    config = [e for e in flowed["events"] if e["kind"] == "config"]
    applied = {e["detail"]["protocol"] for e in config
               if e["detail"]["action"] == "protocol.applied"}
    signed = Counter(e["detail"]["protocol"] for e in config
                     if e["detail"]["action"] == "protocol.signed")
    assert applied == {p.ref for p in hub.boot.protocols}
    assert signed == {p.ref: len(p.signatures) for p in hub.boot.protocols}
    assert any(e["detail"]["action"] == "county.applied" for e in config)


def _cli(hub: LocalHub, *args: str, prefix: str | None = None) -> Any:
    s = _settings(hub)
    env = {"S115HUB_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
           "S115HUB_TOPIC_PREFIX": prefix or s.topic_prefix,
           "S115HUB_STATE_DIR": str(hub.state_dir),
           "S115HUB_KAFKA_IDEMPOTENT_PRODUCER": str(s.kafka_idempotent_producer)}
    return CliRunner().invoke(app, list(args), env=env)


def test_audit_verify_passes_over_the_hubs_chain(hub: LocalHub, flowed: dict[str, Any]) -> None:
    res = _cli(hub, "audit", "verify")
    assert res.exit_code == 0, res.output
    assert f"{len(flowed['events'])} events" in res.output or "OK" in res.output
    # Independent of the CLI: the chain checks with the hub's public key.
    key = load_audit_key(hub.state_dir / "audit-key.pem")
    report = verify_chain(flowed["events"], flowed["checkpoints"], {key.key_id: key.public})
    assert report.ok, report.reason
    assert report.checkpoints_checked >= 1


def test_audit_query_finds_a_records_disclosures(hub: LocalHub, flowed: dict[str, Any]) -> None:
    _group, rid, _ = flowed["deliveries"][0]
    res = _cli(hub, "audit", "query", "--record", rid, "--kind", "disclosure", "--json")
    assert res.exit_code == 0, res.output
    found = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    want = {g for g, r, _ in flowed["deliveries"] if r == rid}
    assert {e["recipient"] for e in found} == want
    assert {e["hub_record_id"] for e in found} == {rid}


def _copy_chain(hub: LocalHub, events: list[dict[str, Any]], cps: list[dict[str, Any]]) -> str:
    """Write events and checkpoints to a fresh prefix's audit topic, as the chainer would."""
    from kafka import KafkaProducer

    from services.core.kafka.clients import kafka_python_common

    s = _settings(hub)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    ensure_topics(s, [TopicSpec(f"{prefix}.audit", 1, {})])
    producer = KafkaProducer(**kafka_python_common(s), acks="all")
    try:
        for ev in events:
            producer.send(f"{prefix}.audit", key=b"x", value=canonical_bytes(ev)).get(timeout=30)
        for cp in cps:
            producer.send(f"{prefix}.audit", key=f"checkpoint/{cp['seq']}".encode(),
                          value=canonical_bytes(cp)).get(timeout=30)
    finally:
        producer.close()
    return prefix


def test_audit_verify_reports_the_first_bad_position_on_the_broker(
        hub: LocalHub, flowed: dict[str, Any]) -> None:
    events = flowed["events"]
    assert len(events) >= 6
    i = len(events) // 2
    edited = [dict(e) for e in events]
    edited[i]["recipient"] = "grp-someone-else"
    edited[i]["hash"] = event_hash(AuditEvent.model_validate(edited[i]))  # re-hashed edit
    deleted = events[:i] + events[i + 1:]
    reordered = [*events[:i], events[i + 1], events[i], *events[i + 2:]]
    cases = {"edit": (edited, i + 1), "delete": (deleted, i), "reorder": (reordered, i)}
    for name, (tampered, pos) in cases.items():
        prefix = _copy_chain(hub, tampered, flowed["checkpoints"])
        res = _cli(hub, "audit", "verify", prefix=prefix)
        assert res.exit_code == 1, f"{name}: {res.output}"
        assert f"at position {pos} " in res.output, f"{name}: {res.output}"


def test_exported_bundle_verifies_offline_and_fails_once_altered(
        hub: LocalHub, flowed: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    res = _cli(hub, "audit", "export", str(out))
    assert res.exit_code == 0, res.output
    pub = hub.state_dir / "audit-key.pem.pub"
    res = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key",
                                   str(pub)])
    assert res.exit_code == 0, res.output
    lines = (out / "events.jsonl").read_bytes().splitlines(keepends=True)
    k = len(lines) // 3
    altered = json.loads(lines[k])
    altered["recipient"] = "grp-elsewhere"
    lines[k] = canonical_bytes(altered) + b"\n"
    (out / "events.jsonl").write_bytes(b"".join(lines))
    res = CliRunner().invoke(app, ["audit", "verify", "--bundle", str(out), "--public-key",
                                   str(pub)])
    assert res.exit_code == 1, res.output
    assert f"position {k}" in res.output
