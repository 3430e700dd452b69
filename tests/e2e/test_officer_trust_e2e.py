"""Officer trust anchors through the running hub: a key that arrives only on the config topic makes
no protocol live, however validly it signed; the same key, once added to the pinned officer key
file with another party's countersignature and the new fingerprint approved in the county, does —
without a restart — and the change is on the audit trail with who countersigned it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from demo.bootstrap import officer_of, protocol_yaml
from demo.cluster import LocalHub
from services.core.config.publish import (
    county_messages,
    officer_message,
    officer_messages,
    protocol_message,
    publish,
    with_officer_fingerprint,
)
from services.core.config.settings import REPO_ROOT
from services.core.crypto.officer_trust import change_for, countersign, dump_log, load_log
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import key_id_of, load_private_key, sign_protocol
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CONFIG = REPO_ROOT / "deploy" / "hertfordshire"


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[LocalHub]:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("trust"), CONFIG)
    yield h
    h.stop()


def live(hub: LocalHub, service: str, ref: str) -> float:
    text = httpx.get(f"{hub.url(service)}/metrics", timeout=5).text
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == f"s115hub_{service}_protocol_live" and s.labels.get("protocol") == ref)


def officer_key(hub: LocalHub, party: str) -> Ed25519PrivateKey:
    [path] = sorted((hub.state_dir / "officers" / party).glob("*.key.pem"))
    return load_private_key(path)


def version_2(hub: LocalHub, police_key: Ed25519PrivateKey) -> Protocol:
    """police-district version 2, signed by every party, herts-police with ``police_key``."""
    assert hub.boot is not None
    base = load_protocol(hub.state_dir / "protocols" / "police-district-v1.yaml")
    p = Protocol.model_validate({**base.model_dump(mode="json"), "version": 2, "signatures": []})
    for party in p.parties:
        key = police_key if party == "herts-police" else officer_key(hub, party)
        p = sign_protocol(p, key, party, officer_of(hub.boot.county, party))
    return p


def facts(hub: LocalHub) -> list[dict[str, Any]]:
    assert hub.settings is not None
    return [f for f in read_json(hub.settings, f"{hub.settings.topic_prefix}.audit.officer")
            if f.get("kind") == "config"]


def test_given_a_key_only_on_the_topic_then_the_protocol_it_signed_is_not_live(
        hub: LocalHub) -> None:
    assert hub.settings is not None
    rogue = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    pem = rogue.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    v2 = version_2(hub, rogue)
    # Exactly what a writer of s115.config could do: announce a key and use it.
    publish(hub.settings, [officer_message(key_id_of(rogue.public_key()), "herts-police",
                                           "Rogue", pem.decode()),
                           protocol_message(v2.ref, protocol_yaml(v2), "police-district.yaml")])
    # The config reached depersonalise (it reports a gauge for v2), which does not treat it as
    # live.
    wait_for(lambda: 'protocol="police-district@2"' in httpx.get(
        f"{hub.url('depersonalise')}/metrics", timeout=5).text, bool, timeout=30,
        what="depersonalise saw police-district@2")
    wait_for(lambda: live(hub, "depersonalise", "police-district@1"), lambda v: v == 1,
             timeout=30, what="version 1 still live")
    assert live(hub, "depersonalise", "police-district@2") == 0
    status = hub_cli(hub, "protocol", "status")
    assert f"unknown key {key_id_of(rogue.public_key())}" in status, status
    assert "protocol police-district@2: BLOCKED [bad_signature]" in status
    assert "feed herts-police/police: released under police-district@1" in status


def test_given_the_key_countersigned_and_pinned_then_the_protocol_is_live_and_audited(
        hub: LocalHub) -> None:
    assert hub.settings is not None
    assert hub.boot is not None
    new = Ed25519PrivateKey.generate()
    anchors_path = hub.state_dir / "officer-keys.yaml"
    log = load_log(anchors_path)
    assert log is not None
    log = log.model_copy(update={"changes": [
        *log.changes, change_for("herts-police", "New Designated Officer", new.public_key())]})
    log = countersign(log, len(log.changes) - 1, officer_key(hub, "herts-fire"), "herts-fire",
                      officer_of(hub.boot.county, "herts-fire"))
    # The mounted file changes first (a Kubernetes secret update), then officers approve the
    # county with its fingerprint; until both agree, nothing new is trusted.
    anchors_path.write_text(dump_log(log))
    v2 = version_2(hub, new)
    publish(hub.settings, [*with_officer_fingerprint(county_messages(CONFIG / "county.yaml"), log),
                           *officer_messages(log),
                           protocol_message(v2.ref, protocol_yaml(v2), "police-district.yaml")])
    wait_for(lambda: live(hub, "depersonalise", "police-district@2"), lambda v: v == 1,
             timeout=30, what="version 2 live once its key is pinned")
    added = wait_for(lambda: [f for f in facts(hub)
                              if f["detail"]["action"] == "officer.added"
                              and f["detail"]["subject"] == key_id_of(new.public_key())],
                     bool, timeout=30, what="officer.added fact for the new key")
    assert added[0]["detail"]["countersigned_by"] == (
        f"{officer_of(hub.boot.county, 'herts-fire')}@herts-fire")
    assert added[0]["detail"]["party"] == "herts-police"


def hub_cli(hub: LocalHub, *args: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=hub.env(),
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    return done.stdout + done.stderr
