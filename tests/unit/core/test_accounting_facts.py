"""Unrouted, withheld and generalised facts: built, chained, recognised on re-emission. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.envelope import Envelope
from schemas.shared import SharedRecord
from services.core.audit.accounting import (
    generalised_fact,
    unrouted_fact,
    unrouted_reason,
    withheld_fact,
)
from services.core.audit.chain import verify_chain
from services.core.audit.facts import decode_fact, encode_fact, event_identity
from services.core.audit.key import HubAuditKey, audit_key_id
from services.core.audit.log import ChainState
from services.depersonalise.accounting import accounting_facts
from services.depersonalise.stage import StageResult

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def shared(rid: str = "r1", ward: str | None = "E05000001",
           district: str | None = "E07000001") -> SharedRecord:
    return SharedRecord(hub_record_id=rid, partner="herts-police", feed="police",
                        category="burglary", ward_code=ward, district_code=district,
                        fields={"category": "burglary"}, protocol="police-district@2",
                        released_at=T0)


def test_given_no_ward_or_district_then_the_reason_is_no_area() -> None:
    assert unrouted_reason(shared(ward=None, district=None)) == "no_area"
    assert unrouted_reason(shared()) == "no_group"
    assert unrouted_reason(shared(ward=None)) == "no_group"


def test_unrouted_fact_names_record_partner_protocol_and_reason_but_no_field_value() -> None:
    f = unrouted_fact(shared(), at=T0)
    assert f["fact_id"] == "unrouted/police-district@2/r1"
    assert (f["kind"], f["hub_record_id"], f["partner"], f["feed"], f["protocol"]) == (
        "unrouted", "r1", "herts-police", "police", "police-district@2")
    assert f["detail"]["reason"] == "no_group"
    assert f["fields"] == {}
    assert f["payload_digest"] is None


def test_given_each_accounting_fact_then_it_chains_verifies_and_is_chained_once() -> None:
    k = Ed25519PrivateKey.generate()
    state = ChainState(HubAuditKey(k, audit_key_id(k.public_key())), every=1000, seconds=3600)
    facts = [unrouted_fact(shared(), at=T0),
             withheld_fact("r2", "herts-fire", "fire", "expired", "fire-district@1 expired",
                           at=T0),
             generalised_fact("r3", "herts-police", "police", "police-district@2", "suppress",
                              ["victim_dob", "location"], at=T0)]
    events = [state.accept(decode_fact(encode_fact(f))) for f in facts]
    assert [e.kind for e in events if e is not None] == ["unrouted", "withheld", "generalised"]
    assert verify_chain([e for e in events if e is not None], [], {}).ok
    assert state.accept(decode_fact(encode_fact(facts[0]))) is None  # re-emitted: chained once


def test_given_a_chained_accounting_event_then_its_identity_is_its_fact_id() -> None:
    from services.core.audit.chain import ChainWriter
    from services.core.audit.facts import fact_append_kwargs

    w = ChainWriter()
    for f in (unrouted_fact(shared(), at=T0), withheld_fact("r2", "p", "fire", "unsigned"),
              generalised_fact("r3", "p", "police", "police-district@2", "generalise", ["x"])):
        ev = w.append(**fact_append_kwargs(f))
        assert event_identity(ev) == f["fact_id"]


def test_given_a_blocked_record_then_depersonalise_accounts_one_withheld_fact() -> None:
    env = Envelope(hub_record_id="r9", partner="herts-fire", feed="fire", source_id="F-1",
                   received_at=T0)
    facts = accounting_facts(env, StageResult(blocked="revoked", detail="fire-district@1 "
                                                                        "not live: revoked"))
    assert [(f["kind"], f["detail"]["cause"]) for f in facts] == [("withheld", "revoked")]


def test_given_a_gated_record_then_one_generalised_fact_per_protocol_not_released_as_is() -> None:
    env = Envelope(hub_record_id="r9", partner="herts-police", feed="police", source_id="P-1",
                   received_at=T0)
    result = StageResult(gate={"a@1": "release", "b@1": "generalise", "c@1": "suppress"},
                         gated_fields={"b@1": ("victim_dob",), "c@1": ("location",)})
    facts = accounting_facts(env, result)
    assert [(f["protocol"], f["detail"]["gate"], f["detail"]["fields"]) for f in facts] == [
        ("b@1", "generalise", ["victim_dob"]), ("c@1", "suppress", ["location"])]


def test_given_a_released_record_then_nothing_to_account() -> None:
    env = Envelope(hub_record_id="r9", partner="p", feed="police", source_id="P-1",
                   received_at=T0)
    assert accounting_facts(env, StageResult(gate={"a@1": "release"})) == []
