from __future__ import annotations

from datetime import date

import pytest

from services.core.config.errors import ConfigError
from services.protocols.lifecycle import ProtocolSet, protocol_status
from services.protocols.protocol import FeedRules, Protocol, load_protocol

from . import HERTS_PROTOCOLS, Officers, make_protocol

TODAY = date(2026, 6, 1)


@pytest.fixture(scope="module")
def officers() -> Officers:
    return Officers(["herts-police", "herts-fire", "grp-watford", "grp-herts-county"])


def _status(protocol: Protocol, officers: Officers, today: date = TODAY,
            revoked: set[str] | None = None) -> tuple[bool, list[str], bool]:
    s = protocol_status(protocol, today=today, officer_keys=officers.registry,
                        revoked=revoked or set())
    assert s.ref == protocol.ref
    return s.live, s.reasons, s.review_due


def test_given_signed_by_every_party_and_in_date_then_it_is_live(officers: Officers) -> None:
    assert _status(officers.sign(make_protocol()), officers) == (True, [], False)


def test_given_an_unsigned_protocol_then_it_is_not_live_and_each_party_is_named(
        officers: Officers) -> None:
    live, reasons, _ = _status(make_protocol(), officers)
    assert not live
    assert reasons == ["unsigned by herts-police", "unsigned by grp-watford",
                       "unsigned by grp-herts-county"]


def test_given_one_recipient_has_not_signed_then_it_is_not_live(officers: Officers) -> None:
    signed = officers.sign(make_protocol(), skip=("grp-watford",))
    assert _status(signed, officers) == (False, ["unsigned by grp-watford"], False)


def test_given_the_last_valid_day_then_it_is_live_and_the_day_after_it_has_expired(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    assert _status(signed, officers, date(2027, 12, 31))[0]
    assert _status(signed, officers, date(2028, 1, 1))[:2] == (False, ["expired 2027-12-31"])


def test_given_a_day_before_valid_from_then_it_is_not_yet_valid(officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    live, reasons, _ = _status(signed, officers, date(2025, 12, 31))
    assert not live
    assert reasons == ["not yet valid (from 2026-01-01)"]
    assert _status(signed, officers, date(2026, 1, 1))[0]


def test_given_a_revoked_ref_then_it_is_not_live(officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    assert _status(signed, officers, revoked={"test-police@1"})[:2] == (False, ["revoked"])
    assert _status(signed, officers, revoked={"test-police@2"})[0]


def test_given_a_tampered_protocol_then_it_is_not_live_and_says_whose_signature_failed(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    tampered = signed.model_copy(update={"recipients": ["grp-watford"]})
    live, reasons, _ = _status(tampered, officers)
    assert not live
    assert "signature invalid for herts-police" in reasons
    assert "signature by grp-herts-county, who is not a party" in reasons


def test_given_the_review_date_has_passed_then_review_is_due_but_it_stays_live(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    assert _status(signed, officers, date(2027, 6, 29)) == (True, [], False)
    assert _status(signed, officers, date(2027, 6, 30)) == (True, [], True)


def _versions(officers: Officers) -> tuple[Protocol, Protocol]:
    v1 = officers.sign(make_protocol())
    v2 = make_protocol(version=2, title="Test protocol, narrower")
    return v1, v2


def test_given_an_unsigned_new_version_then_the_old_live_version_still_governs(
        officers: Officers) -> None:
    v1, v2 = _versions(officers)
    pset = ProtocolSet([v1, v2], officer_keys=officers.registry)
    assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == ["test-police@1"]


def test_given_a_live_new_version_then_it_supersedes_the_old_one(officers: Officers) -> None:
    v1, v2 = _versions(officers)
    pset = ProtocolSet([v2, v1], officer_keys=officers.registry)
    pset.add(officers.sign(v2))
    assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == ["test-police@2"]
    pset.revoke("test-police@2")
    assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == ["test-police@1"]


def test_given_the_new_version_drops_a_feed_then_the_old_version_cannot_be_used_for_it(
        officers: Officers) -> None:
    both = {"police": make_protocol().feeds["police"],
            "fire": FeedRules.model_validate({"fields": {"category": "keep"}})}
    v1 = officers.sign(make_protocol(disclosers=["herts-police", "herts-fire"], feeds=both))
    v2 = officers.sign(make_protocol(version=2, disclosers=["herts-police", "herts-fire"]))
    pset = ProtocolSet([v1, v2], officer_keys=officers.registry)
    assert pset.live_for("herts-fire", "fire", TODAY) == []
    assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == ["test-police@2"]


def test_given_a_partner_that_is_not_a_discloser_then_nothing_is_live_for_it(
        officers: Officers) -> None:
    pset = ProtocolSet([officers.sign(make_protocol())], officer_keys=officers.registry)
    assert pset.live_for("herts-fire", "police", TODAY) == []
    assert pset.live_for("herts-police", "fire", TODAY) == []


def test_given_several_protocols_then_statuses_report_each_version(officers: Officers) -> None:
    v1, v2 = _versions(officers)
    pset = ProtocolSet([v1, v2], officer_keys=officers.registry, revoked=["test-police@1"])
    statuses = {s.ref: s for s in pset.statuses(TODAY)}
    assert statuses["test-police@1"].reasons == ["revoked"]
    assert not statuses["test-police@2"].live
    assert pset.live_for("herts-police", "police", TODAY) == []


def test_given_two_documents_with_one_ref_then_the_set_refuses_the_second(
        officers: Officers) -> None:
    pset = ProtocolSet([make_protocol()], officer_keys=officers.registry)
    pset.add(officers.sign(make_protocol()))  # same text, now signed: fine
    with pytest.raises(ConfigError, match="raise the version"):
        pset.add(make_protocol(k=5))


def test_given_the_hertfordshire_directory_when_loaded_and_signed_then_all_are_live() -> None:
    unsigned = ProtocolSet.from_directory(HERTS_PROTOCOLS, officer_keys={})
    assert len(unsigned) == 4
    assert not any(s.live for s in unsigned.statuses(TODAY))
    parties = sorted({p for protocol in unsigned for p in protocol.parties})
    officers = Officers(parties)
    pset = ProtocolSet((officers.sign(p) for p in unsigned), officer_keys=officers.registry)
    assert all(s.live for s in pset.statuses(TODAY))
    assert [p.ref for p in pset.live_for("watford-bc", "council", TODAY)] == [
        "council-district@1"]
    assert [p.ref for p in pset.live_for("enherts-nhs", "health", TODAY)] == ["health-county@1"]
    assert load_protocol(HERTS_PROTOCOLS / "health-county.yaml").parties == (
        "enherts-nhs", "grp-herts-county")
