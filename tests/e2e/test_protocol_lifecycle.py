"""Protocols through the running hub: live reload of a new version, key rotation, and enforcement
(revoked, tampered, expired and unsigned protocols release nothing, and the blocked metric and
``protocol status`` say why). One hub for the module; the tests run in file order and each
changes the config further, as an officer would."""

from __future__ import annotations

import operator
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from demo.bootstrap import officer_of, protocol_yaml
from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.config.publish import protocol_message, publish
from services.core.config.settings import REPO_ROOT
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import load_private_key, sign_protocol
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 8


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[LocalHub]:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("lifecycle"),
                  REPO_ROOT / "deploy" / "hertfordshire")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def gen(hub: LocalHub) -> Generator:
    assert hub.settings is not None
    return Generator(AreaIndex.load(hub.settings.boundaries_dir), seed=7)


def post(hub: LocalHub, gen: Generator, feed: str, n: int = N) -> set[str]:
    assert hub.boot is not None
    ids = set()
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for _ in range(n):
            ward, rec = gen.record(feed)
            r = client.post(f"/v1/feeds/{feed}/records", json=rec, headers={
                "X-API-Key": hub.boot.api_keys[gen.partner_for(feed, ward)]})
            assert r.status_code == 202, r.text
            ids.add(r.json()["hub_record_id"])
    return ids


def shared(hub: LocalHub) -> dict[str, list[dict[str, Any]]]:
    assert hub.settings is not None
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in read_json(hub.settings, f"{hub.settings.topic_prefix}.shared"):
        out.setdefault(rec["hub_record_id"], []).append(rec)
    return out


def metric(hub: LocalHub, name: str, **labels: str) -> float:
    text = httpx.get(f"{hub.url('depersonalise')}/metrics", timeout=5).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def signed_copy(hub: LocalHub, protocol_id: str, **update: Any) -> Protocol:
    """The bootstrap's protocol with ``update`` applied, signed afresh by every party's officer
    key from the hub's state directory."""
    assert hub.boot is not None
    base = load_protocol(hub.state_dir / "protocols" / f"{protocol_id}-v1.yaml")
    p = Protocol.model_validate({**base.model_dump(mode="json"), **update, "signatures": []})
    for party in p.parties:
        [key] = sorted((hub.state_dir / "officers" / party).glob("*.key.pem"))
        p = sign_protocol(p, load_private_key(key), party, officer_of(hub.boot.county, party))
    return p


def apply(hub: LocalHub, *protocols: Protocol, revoke: tuple[str, ...] = ()) -> None:
    assert hub.settings is not None
    msgs = [protocol_message(p.ref, protocol_yaml(p), f"{p.id}.yaml") for p in protocols]
    msgs += [(f"revoked/{ref}", {"by": "test"}) for ref in revoke]
    publish(hub.settings, msgs)


def cli(hub: LocalHub, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=hub.env(),
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)


def test_given_version_2_applied_then_it_governs_without_a_restart(
        hub: LocalHub, gen: Generator) -> None:
    before = post(hub, gen, "police")
    got = wait_for(lambda: shared(hub), lambda s: before <= s.keys(), timeout=90,
                   what="police records under version 1")
    v1 = [r for rid in before for r in got[rid]]
    assert {r["protocol"] for r in v1} == {"police-district@1"}
    assert all("summary" in r["fields"] for r in v1)
    pid = hub.procs["depersonalise"].pid

    v2 = signed_copy(hub, "police-district", version=2, feeds={"police": {"fields": {
        **load_protocol(hub.state_dir / "protocols" / "police-district-v1.yaml")
        .model_dump(mode="json")["feeds"]["police"]["fields"],
        "summary": "drop"}}})
    apply(hub, v2)
    wait_for(lambda: metric(hub, "s115hub_depersonalise_protocol_live",
                            protocol="police-district@2"), lambda v: v == 1, timeout=30,
             what="version 2 live in depersonalise")
    after = post(hub, gen, "police")
    got = wait_for(lambda: shared(hub), lambda s: after <= s.keys(), timeout=90,
                   what="police records under version 2")
    v2_out = [r for rid in after for r in got[rid]]
    assert {r["protocol"] for r in v2_out} == {"police-district@2"}
    assert not any("summary" in r["fields"] for r in v2_out)
    assert hub.procs["depersonalise"].pid == pid
    assert hub.procs["depersonalise"].poll() is None


def test_given_keys_rotate_then_new_records_carry_the_new_epoch(
        hub: LocalHub, gen: Generator) -> None:
    done = cli(hub, "keys", "rotate", "police-district")
    assert done.returncode == 0, done.stderr
    assert "police-district: key epoch 2" in done.stdout
    ids = post(hub, gen, "police")
    got = wait_for(lambda: shared(hub), lambda s: ids <= s.keys(), timeout=90,
                   what="police records after rotation")
    assert {r["key_epoch"] for rid in ids for r in got[rid]} == {2}
    older = [r for rs in got.values() for r in rs if r["hub_record_id"] not in ids]
    assert older
    assert {r["key_epoch"] for r in older} == {1}


def test_given_revoked_tampered_expired_and_unsigned_protocols_then_nothing_is_released(
        hub: LocalHub, gen: Generator) -> None:
    fire = load_protocol(hub.state_dir / "protocols" / "fire-district-v1.yaml")
    council = load_protocol(hub.state_dir / "protocols" / "council-district-v1.yaml")
    apply(hub,
          fire.model_copy(update={"k": 2}),  # edited after signing, signatures kept
          signed_copy(hub, "health-county", valid_from="2025-01-01", valid_until="2025-12-31",
                      review_by="2025-06-30"),
          council.model_copy(update={"signatures": []}),
          revoke=("police-district@1", "police-district@2"))
    refs = ("police-district@2", "fire-district@1", "health-county@1", "council-district@1")
    for ref in refs:
        wait_for(partial(metric, hub, "s115hub_depersonalise_protocol_live", protocol=ref),
                 lambda v: v == 0, timeout=30,
                 what=f"{ref} not live in depersonalise")
    causes = {"police": "revoked", "fire": "bad_signature", "health": "expired",
              "council": "unsigned"}
    base = {f: metric(hub, "s115hub_depersonalise_records_blocked_total", feed=f, cause=c)
            for f, c in causes.items()}
    ids = set().union(*(post(hub, gen, feed) for feed in causes))
    for feed, cause in causes.items():
        wait_for(partial(metric, hub, "s115hub_depersonalise_records_blocked_total", feed=feed,
                         cause=cause),
                 partial(operator.le, base[feed] + N), timeout=90,
            what=f"{N} {feed} records blocked as {cause}")
    leaked = ids & shared(hub).keys()
    assert not leaked, f"released under a protocol that is not live: {sorted(leaked)[:5]}"

    status = cli(hub, "protocol", "status")
    assert status.returncode == 1, status.stdout + status.stderr
    out = status.stdout
    print(out)
    assert "protocol police-district@2: BLOCKED [revoked]" in out
    assert "protocol fire-district@1: BLOCKED [bad_signature]" in out
    assert "protocol health-county@1: BLOCKED [expired]" in out
    assert "protocol council-district@1: BLOCKED [unsigned]" in out
    assert "feed herts-police/police: BLOCKED [revoked]" in out
    assert "feed watford-bc/council: BLOCKED [unsigned]" in out


def test_given_blocked_records_then_replay_after_signing_releases_each_once(
        hub: LocalHub, gen: Generator) -> None:
    """Continues from the enforcement test: council is unsigned, so council records are blocked.
    Signing does not release them by itself; ``protocol replay`` does, once per group."""
    assert hub.settings is not None
    since = datetime.now(UTC) - timedelta(seconds=1)
    base = metric(hub, "s115hub_depersonalise_records_blocked_total", feed="council",
                  cause="unsigned")
    ids = post(hub, gen, "council")
    wait_for(lambda: metric(hub, "s115hub_depersonalise_records_blocked_total", feed="council",
                            cause="unsigned"), lambda v: v >= base + N, timeout=90,
             what="council records blocked as unsigned")

    apply(hub, signed_copy(hub, "council-district"))
    wait_for(lambda: metric(hub, "s115hub_depersonalise_protocol_live",
                            protocol="council-district@1"), lambda v: v == 1, timeout=30,
             what="council-district@1 live once signed")
    assert not ids & shared(hub).keys(), "signing alone must not release blocked records"

    for _ in range(2):  # a second replay must not deliver anything twice
        done = cli(hub, "protocol", "replay", "--feed", "council",
                   "--since", since.strftime("%Y-%m-%dT%H:%M:%S"))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"matched {N}" in done.stdout, done.stdout
    got = wait_for(lambda: shared(hub), lambda s: ids <= s.keys(), timeout=90,
                   what="replayed council records released")
    assert {r["protocol"] for rid in ids for r in got[rid]} == {"council-district@1"}

    settings = hub.settings
    assert settings is not None
    topic = f"{settings.topic_prefix}.deliver.grp-herts-county"
    delivered = wait_for(lambda: [r["hub_record_id"] for r in read_json(settings, topic)],
                         lambda rs: ids <= set(rs), timeout=60,
                         what="replayed council records at the county group")
    assert sum(1 for r in delivered if r in ids) == N, "a replayed record was delivered twice"
