"""The stage (no Kafka): lifecycle enforcement with its blocked causes, the risk gate wired in,
area codes never finer than the gated location, and key epochs on the output."""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.envelope import Envelope, RawRecord
from services.core.areas import AreaIndex
from services.core.config.settings import Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.depersonalise.stage import Depersonaliser
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import load_protocol
from tests.unit.protocols import HERTS_PROTOCOLS, Officers

TODAY = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
WARD = "E05004839"  # Central, Watford


class _NoSealed:
    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]:
        raise AssertionError("these tests keep every field in clear")


@pytest.fixture(scope="module")
def areas() -> AreaIndex:
    return AreaIndex.load(Settings().boundaries_dir)


@pytest.fixture(scope="module")
def police() -> Any:
    return load_protocol(HERTS_PROTOCOLS / "police-district.yaml")


@pytest.fixture(scope="module")
def officers(police: Any) -> Officers:
    return Officers(police.parties)


@pytest.fixture
def ring(tmp_path: Path) -> PseudonymKeyring:
    return PseudonymKeyring(tmp_path / "keyring.bin", os.urandom(32))


def _stage(areas: AreaIndex, ring: PseudonymKeyring, pset: ProtocolSet) -> Depersonaliser:
    stage = Depersonaliser(areas=areas, opener=_NoSealed(), keys=ring)
    stage.protocols = pset
    return stage


_n = iter(range(1_000_000))


def _raw(areas: AreaIndex, *, ward: str = WARD, victim_dob: str = "1990-05-01",
         partner: str = "herts-police") -> RawRecord:
    lat, lon = areas.random_point_in(ward, random.Random(next(_n)))
    rid = f"r{next(_n)}"
    return RawRecord(
        envelope=Envelope(hub_record_id=rid, partner=partner, feed="police", source_id=rid,
                          received_at=NOW),
        fields={"category": "drugs", "occurred_at": "2026-05-31T21:14:00+00:00",
                "location": {"lat": lat, "lon": lon}, "victim_name": "Ava Lockwood",
                "victim_dob": victim_dob, "summary": "Ava Lockwood called from 07700 900123"})


def test_given_a_live_protocol_then_a_rare_record_goes_out_with_its_district_only(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _stage(areas, ring, ProtocolSet([officers.sign(police)],
                                            officer_keys=officers.registry))
    result = stage.process(_raw(areas), today=TODAY, now=NOW)
    assert result.blocked is None
    [rec] = result.shared
    assert result.gate == {"police-district@1": "suppress"}
    assert rec.ward_code is None
    assert rec.district_code == "E07000103"
    assert rec.fields["location"] == "E07000103"
    assert "victim_dob" not in rec.fields
    assert rec.fields["occurred_at"] == "2026-05-31T21:00:00Z"  # not a QI: untouched
    assert rec.protocol == "police-district@1"


def test_given_k_records_in_one_ward_then_the_ward_is_kept_and_ages_widen_first(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _stage(areas, ring, ProtocolSet([officers.sign(police)],
                                            officer_keys=officers.registry))
    results = [stage.process(_raw(areas, victim_dob=dob), today=TODAY, now=NOW)
               for dob in ("1990-05-01", "1980-01-01", "1970-03-03")]
    third = results[-1].shared[0]
    assert results[-1].gate == {"police-district@1": "generalise"}
    assert third.ward_code == WARD
    assert third.fields["location"] == WARD
    assert third.fields["victim_dob"] == "18-64"


def test_given_the_same_raw_record_twice_then_the_output_is_the_same(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _stage(areas, ring, ProtocolSet([officers.sign(police)],
                                            officer_keys=officers.registry))
    raw = _raw(areas)
    first, second = (stage.process(raw, today=TODAY, now=NOW) for _ in range(2))
    assert first.shared == second.shared


@pytest.mark.parametrize(("case", "cause"), [
    ("unsigned", "unsigned"), ("tampered", "bad_signature"), ("expired", "expired"),
    ("not_yet_valid", "not_yet_valid"), ("revoked", "revoked"), ("other_partner", "no_protocol"),
])
def test_given_a_protocol_that_is_not_live_then_nothing_is_released_and_the_cause_is_named(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers, case: str,
        cause: str) -> None:
    signed = officers.sign(police)
    revoked: list[str] = []
    today = TODAY
    partner = "herts-police"
    if case == "unsigned":
        signed = officers.sign(police, skip=("grp-watford",))
    elif case == "tampered":
        # Edited after signing: k lowered, signatures left as they were.
        signed = signed.model_copy(update={"k": 2})
    elif case == "expired":
        today = date(2028, 1, 1)
    elif case == "not_yet_valid":
        today = date(2025, 12, 31)
    elif case == "revoked":
        revoked = [signed.ref]
    else:
        partner = "herts-fire"
    stage = _stage(areas, ring, ProtocolSet([signed], officer_keys=officers.registry,
                                            revoked=revoked))
    result = stage.process(_raw(areas, partner=partner), today=today, now=NOW)
    assert result.shared == []
    assert result.blocked == cause
    assert result.detail


def test_given_a_rotated_key_then_new_records_carry_the_new_epoch_and_new_tokens(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _stage(areas, ring, ProtocolSet([officers.sign(police)],
                                            officer_keys=officers.registry))
    before = stage.process(_raw(areas), today=TODAY, now=NOW).shared[0]
    ring.rotate("police-district")
    after = stage.process(_raw(areas), today=TODAY, now=NOW).shared[0]
    assert (before.key_epoch, after.key_epoch) == (1, 2)
    assert before.fields["victim_name"] != after.fields["victim_name"]
