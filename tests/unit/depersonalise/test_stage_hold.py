"""The stage holds a record for its ward (protocol ``hold_hours``): nothing is released while it
waits, the raw offset it came from is the commit floor (so a kill -9 re-reads it), the record
leaves at ward level when its cell fills, and at the district when its hold ends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.core.areas import AreaIndex
from services.core.crypto.keyring import PseudonymKeyring
from services.protocols.lifecycle import ProtocolSet
from tests.unit.depersonalise.test_stage import (  # the module's fixtures and builders
    NOW,
    TODAY,
    WARD,
    _raw,
    _stage,
    areas,
    officers,
    police,
    ring,
)
from tests.unit.protocols import Officers

__all__ = ["areas", "officers", "police", "ring"]  # fixtures, re-exported for pytest


def _held_stage(areas: AreaIndex, ring: PseudonymKeyring, police: Any,
                officers: Officers, hours: float = 6) -> Any:
    held = police.model_copy(update={"hold_hours": hours})
    return _stage(areas, ring, ProtocolSet([officers.sign(held)],
                                           officer_keys=officers.registry))


def test_given_a_hold_then_rare_records_wait_and_leave_with_their_ward_when_the_cell_fills(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _held_stage(areas, ring, police, officers)
    first = stage.process(_raw(areas, victim_dob="1990-05-01"), today=TODAY, now=NOW,
                          position=("s115.raw.police", 0, 41))
    second = stage.process(_raw(areas, victim_dob="1950-05-01"), today=TODAY,
                           now=NOW + timedelta(minutes=5), position=("s115.raw.police", 0, 42))
    assert first.shared == []
    assert second.shared == []
    assert first.gate == {"police-district@1": "hold"}
    assert stage.held == 2
    assert stage.commit_floor() == {("s115.raw.police", 0): 41}
    third = stage.process(_raw(areas, victim_dob="1970-03-03"), today=TODAY,
                          now=NOW + timedelta(minutes=9), position=("s115.raw.police", 0, 43))
    assert len(third.shared) == 3
    assert {r.ward_code for r in third.shared} == {WARD}
    assert stage.held == 0
    assert stage.commit_floor() == {}
    assert sorted(a for _, _, a in third.released_held) == ["generalise", "generalise"]


def test_given_a_hold_that_ends_then_due_releases_the_record_at_its_district(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _held_stage(areas, ring, police, officers, hours=2)
    stage.process(_raw(areas), today=TODAY, now=NOW, position=("s115.raw.police", 1, 7))
    assert stage.due(NOW + timedelta(hours=1)).shared == []
    out = stage.due(NOW + timedelta(hours=2))
    [rec] = out.shared
    assert rec.ward_code is None
    assert rec.district_code == "E07000103"
    assert out.released_held == [("police", "police-district@1", "suppress")]
    assert stage.held == 0


def test_given_no_hold_in_the_protocol_then_nothing_is_held(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    stage = _stage(areas, ring, ProtocolSet([officers.sign(police)],
                                            officer_keys=officers.registry))
    result = stage.process(_raw(areas), today=TODAY, now=NOW, position=("t", 0, 1))
    assert len(result.shared) == 1
    assert stage.commit_floor() == {}


def test_given_the_protocol_revoked_while_a_record_is_held_then_it_is_never_released(
        areas: AreaIndex, ring: PseudonymKeyring, police: Any, officers: Officers) -> None:
    held = officers.sign(police.model_copy(update={"hold_hours": 2}))
    stage = _stage(areas, ring, ProtocolSet([held], officer_keys=officers.registry))
    stage.process(_raw(areas), today=TODAY, now=NOW, position=("s115.raw.police", 0, 3))
    assert stage.held == 1
    stage.protocols = ProtocolSet([held], officer_keys=officers.registry, revoked=[held.ref])
    out = stage.due(NOW + timedelta(hours=3))
    assert out.shared == []
    assert stage.held == 0
    assert stage.commit_floor() == {}
