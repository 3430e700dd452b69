"""Audit facts and the chainer's state: pure, no broker."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.audit.chain import verify_chain
from services.core.audit.errors import AuditError
from services.core.audit.facts import (
    alert_fact,
    config_fact,
    config_facts_for,
    decode_fact,
    disclosure_fact,
    encode_fact,
    event_identity,
    payload_digest,
)
from services.core.audit.key import HubAuditKey, audit_key_id, ensure_audit_key, public_path
from services.core.audit.log import ChainState, StoredChain, checkpoint_message, event_message
from services.core.crypto.canonical import canonical_bytes
from services.core.crypto.errors import CryptoError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(rid: str = "r1", **fields: object) -> SharedRecord:
    return SharedRecord(hub_record_id=rid, partner="herts-police", feed="police",
                        category="burglary", ward_code="E05000001",
                        fields=fields or {"category": "burglary", "occurred_at": "2026-03-01T12"},
                        protocol="police-district@2", released_at=T0)


def disclosure(rid: str = "r1", group: str = "grp-watford") -> dict[str, object]:
    return disclosure_fact(record(rid), group, lawful_basis=["CDA 1998 s115", "CDA 1998 s17A"],
                           transforms={"category": "keep", "occurred_at": "time"}, at=T0)


def hub_key() -> HubAuditKey:
    k = Ed25519PrivateKey.generate()
    return HubAuditKey(k, audit_key_id(k.public_key()))


def test_disclosure_fact_holds_what_the_issue_asks_for() -> None:
    f = disclosure()
    assert f["fact_id"] == "disclosure/grp-watford/r1"
    assert (f["hub_record_id"], f["partner"], f["feed"], f["recipient"], f["protocol"]) == (
        "r1", "herts-police", "police", "grp-watford", "police-district@2")
    assert f["lawful_basis"] == "CDA 1998 s115; CDA 1998 s17A"
    assert f["fields"] == {"category": "keep", "occurred_at": "time"}
    released = json.loads(record().model_dump_json())
    assert f["payload_digest"] == hashlib.sha256(canonical_bytes(released)).hexdigest()
    assert f["at"] == "2026-03-01T12:00:00.000000Z"


def test_a_released_field_the_protocol_does_not_name_is_marked_unknown_not_hidden() -> None:
    f = disclosure_fact(record(extra="x", category="b"), "g", lawful_basis="basis",
                        transforms={"category": "keep"}, at=T0)
    assert f["fields"] == {"category": "keep", "extra": "unknown"}


def test_a_disclosure_without_lawful_basis_is_refused_naming_record_and_field() -> None:
    with pytest.raises(AuditError, match=r"record r1, field lawful_basis"):
        disclosure_fact(record(), "g", lawful_basis=[" "], transforms={}, at=T0)


def test_payload_digest_changes_with_any_released_value() -> None:
    assert payload_digest({"a": 1}) != payload_digest({"a": 2})
    assert payload_digest({"a": 1, "b": 2}) == payload_digest({"b": 2, "a": 1})


def test_alert_fact_identity_is_alert_and_group() -> None:
    alert = HotspotAlert(alert_id="al-1", group="grp-a", ward_code="E1", category="burglary",
                         window="day", window_start=T0, window_end=T0 + timedelta(days=1),
                         count="<5", expected=1.0, p_value=0.001, bh_threshold=0.01, gi_z=None,
                         neighbours=[], protocol="police-district@1", raised_at=T0)
    f = alert_fact(alert, at=T0)
    assert f["fact_id"] == "alert/grp-a/al-1"
    assert f["detail"]["count"] == "<5"
    st = ChainState(hub_key())
    ev = st.accept(f)
    assert ev is not None
    assert event_identity(ev) == f["fact_id"]


def test_config_fact_refuses_unknown_actions() -> None:
    with pytest.raises(AuditError, match="unknown config action"):
        config_fact("protocol.eaten", "p@1", "me", at=T0)


def test_config_facts_for_published_messages() -> None:
    text = ("id: p\nversion: 1\nsignatures:\n"
            "- {party: herts-police, officer: A Officer, key_id: 0123456789abcdef, signature: x}\n")
    facts = config_facts_for([
        ("county", {"partners": [{"id": "herts-police"}], "groups": [{"id": "grp-a"}]}),
        ("protocol/p@1", {"yaml": text, "source": "p.yaml"}),
        ("revoked/p@1", {"reason": "breach"}),
        ("revoked/p@1", None),
    ], "officer@host", at=T0)
    actions = [f["detail"]["action"] for f in facts]
    assert actions == ["county.applied", "protocol.applied", "protocol.signed",
                       "protocol.revoked", "protocol.reinstated"]
    signed = facts[2]
    assert signed["detail"]["actor"] == "A Officer@herts-police"
    assert signed["fact_id"] == "config/protocol.signed/p@1/0123456789abcdef"
    # Re-applying the same signed document later records the signature once.
    again = config_facts_for([("protocol/p@1", {"yaml": text, "source": "p.yaml"})], "other",
                             at=T0 + timedelta(days=1))
    assert again[1]["fact_id"] == signed["fact_id"]
    assert again[0]["fact_id"] != facts[1]["fact_id"]


def test_facts_round_trip_and_bad_facts_say_what_is_wrong() -> None:
    f = disclosure()
    assert decode_fact(encode_fact(f)) == f
    with pytest.raises(AuditError, match="not JSON"):
        decode_fact(b"{nope")
    with pytest.raises(AuditError, match="missing fact_id"):
        decode_fact(b'{"kind": "config"}')
    with pytest.raises(AuditError, match="unknown keys"):
        decode_fact(encode_fact({**f, "person": "x"}))


def test_chain_state_chains_each_identity_once_and_every_identity_recomputes() -> None:
    st = ChainState(hub_key())
    facts = [disclosure("r1"), disclosure("r2"), disclosure("r1", "grp-b"),
             config_fact("partner.added", "herts-police", "me", at=T0)]
    events = [st.accept(f) for f in facts]
    assert [e.seq for e in events if e] == [0, 1, 2, 3]
    assert all(e is not None and event_identity(e) == f["fact_id"]
               for e, f in zip(events, facts, strict=True))
    assert st.accept(disclosure("r1")) is None  # a router restart re-emitting it
    assert st.last is not None
    assert st.last.seq == 3


def test_a_fact_whose_id_lies_about_its_content_is_refused_and_the_chain_is_unchanged() -> None:
    st = ChainState(hub_key())
    st.accept(disclosure("r1"))
    liar = {**disclosure("r2"), "fact_id": "disclosure/grp-watford/r9"}
    with pytest.raises(AuditError, match="does not match its content"):
        st.accept(liar)
    ev = st.accept(disclosure("r3"))
    assert ev is not None
    assert ev.seq == 1


def test_recovery_from_the_stored_chain_resumes_head_identities_and_checkpoint() -> None:
    key = hub_key()
    st = ChainState(key, every=2)
    stored = StoredChain()
    for i, f in enumerate([disclosure("r1"), disclosure("r2"), disclosure("r3")]):
        ev = st.accept(f)
        assert ev is not None
        k, v = event_message(ev, str(f["fact_id"]))
        stored.add(k, v, i)
        if st.checkpoint_due():
            cp = st.checkpoint()
            assert cp is not None
            stored.add(*checkpoint_message(cp))
    assert len(stored.checkpoints) == 1
    assert st.unsigned == 1

    again = ChainState(key, every=2)
    again.recover(stored)
    assert again.accept(disclosure("r2")) is None
    assert again.unsigned == 1
    assert again.signed_seq == 1
    nxt = again.accept(disclosure("r4"))
    assert nxt is not None
    assert nxt.seq == 3
    stored.add(*event_message(nxt, "disclosure/grp-watford/r4"))
    cp = again.checkpoint()
    assert cp is not None
    stored.add(*checkpoint_message(cp))
    report = verify_chain(stored.events, stored.checkpoints, {key.key_id: key.public})
    assert report.ok, report.reason
    assert report.events_checked == 4
    assert report.checkpoints_checked == 2


def test_checkpoint_is_due_after_the_interval_even_when_few_events() -> None:
    now = [0.0]
    st = ChainState(hub_key(), every=100, seconds=5, monotonic=lambda: now[0])
    assert not st.checkpoint_due()
    assert st.checkpoint() is None
    st.accept(disclosure())
    assert not st.checkpoint_due()
    now[0] = 5.0
    assert st.checkpoint_due()


def test_recovery_refuses_a_tail_that_was_edited() -> None:
    st = ChainState(hub_key())
    ev = st.accept(disclosure())
    assert ev is not None
    body = json.loads(canonical_bytes(ev))
    body["recipient"] = "grp-other"
    stored = StoredChain()
    stored.add(b"k", json.dumps(body).encode())
    with pytest.raises(AuditError, match="does not match its content"):
        ChainState(hub_key()).recover(stored)


def test_audit_key_is_created_once_with_its_public_half(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit-key.pem"
    k1 = ensure_audit_key(path)
    k2 = ensure_audit_key(path)
    assert k1.key_id == k2.key_id
    assert k1.key_id.startswith("hub-")
    assert public_path(path).exists()
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("garbage")
    with pytest.raises(CryptoError, match="not an unencrypted PEM key"):
        ensure_audit_key(path)
