"""The risk gate keeps the ward: ages and property types are widened and withheld before the ward
is given up, a record whose ward cell is short of k is held (protocol ``hold_hours``) until the
cell fills or the hold ends, and k holds on every combination released, hold or no hold."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.depersonalise.risk_gate import RiskGate, age_band_step, location_step
from services.protocols.signing import protocol_digest
from services.protocols.transforms import AreaInfo
from tests.unit.protocols import make_protocol

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WARDS = [AreaInfo(f"E0501310{i}", f"Ward {i}", "E07000103", "Watford", (51.6, -0.4))
         for i in range(6)]
BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "10-17", "16-24"]
STEPS = {"location": location_step, "victim_dob": age_band_step, "suspect_dob": age_band_step}


def _gate(k: int = 3, hold: timedelta = timedelta(0),
          qis: tuple[str, ...] = ("location", "victim_dob", "suspect_dob")) -> RiskGate:
    return RiskGate(k, list(qis), steps=STEPS, hold=hold)


def _rec(area: AreaInfo, victim: str, suspect: str) -> dict[str, Any]:
    return {"category": "burglary", "location": area.ward_code, "victim_dob": victim,
            "suspect_dob": suspect}


def test_given_the_ward_listed_last_then_ages_are_still_given_up_before_it() -> None:
    gate = RiskGate(2, ["victim_dob", "location"], steps=STEPS)
    w = WARDS[0]
    gate.check({"location": w.ward_code, "victim_dob": "25-34"}, T0, w)
    d = gate.check({"location": w.ward_code, "victim_dob": "35-44"}, T0, w)
    assert d.action == "generalise"
    assert d.fields["location"] == w.ward_code  # kept; the band went wide instead
    assert d.fields["victim_dob"] == "18-64"


def test_given_a_band_straddling_wide_bands_then_it_counts_with_widened_ones() -> None:
    """"16-24" is withheld in one step, "25-34" widened first: both read (ward, -, -) to a
    recipient, so they count together and the third such record keeps its ward."""
    gate = _gate()
    w = WARDS[0]
    gate.check(_rec(w, "16-24", "16-24"), T0, w)
    gate.check(_rec(w, "25-34", "65-74"), T0, w)
    d = gate.check(_rec(w, "10-17", "45-54"), T0, w)
    assert d.action == "generalise"
    assert d.fields["location"] == w.ward_code
    assert "victim_dob" not in d.fields
    assert "suspect_dob" not in d.fields


def test_given_no_hold_then_the_first_records_of_a_ward_go_to_the_district() -> None:
    gate = _gate()
    w = WARDS[0]
    first = gate.check(_rec(w, "25-34", "25-34"), T0, w, record_id="a")
    assert first.action == "suppress"
    assert first.fields["location"] == "E07000103"


def test_given_a_hold_then_a_rare_record_waits_and_leaves_at_ward_level_when_its_cell_fills(
        ) -> None:
    gate = _gate(hold=timedelta(hours=6))
    w = WARDS[0]
    a = gate.check(_rec(w, "25-34", "18-24"), T0, w, record_id="a")
    b = gate.check(_rec(w, "45-54", "65-74"), T0, w, record_id="b")
    assert (a.action, b.action) == ("hold", "hold")
    c = gate.check(_rec(w, "35-44", "35-44"), T0 + timedelta(hours=1), w, record_id="c")
    assert c.action == "generalise"
    assert c.fields["location"] == w.ward_code
    for rid, rec in (("a", _rec(w, "25-34", "18-24")), ("b", _rec(w, "45-54", "65-74"))):
        d = gate.recheck(rec, w, record_id=rid)
        assert d.action == "generalise"
        assert d.fields["location"] == w.ward_code
        assert d.count >= 3


def test_given_a_hold_that_ends_before_the_cell_fills_then_the_record_goes_to_the_district(
        ) -> None:
    gate = _gate(hold=timedelta(hours=6))
    w = WARDS[1]
    rec = _rec(w, "25-34", "18-24")
    assert gate.check(rec, T0, w, record_id="a").action == "hold"
    assert gate.recheck(rec, w, record_id="a").action == "hold"  # still short of k
    d = gate.recheck(rec, w, expired=True, record_id="a")
    assert d.action == "suppress"
    assert d.fields["location"] == "E07000103"
    # The decision now stands for the id: a redelivery gets it back and is not recounted.
    assert gate.check(rec, T0, w, record_id="a").action == "suppress"


def test_given_a_held_record_seen_again_then_it_is_not_counted_twice() -> None:
    gate = _gate(hold=timedelta(hours=6))
    w = WARDS[2]
    rec = _rec(w, "25-34", "18-24")
    for _ in range(5):
        assert gate.check(rec, T0, w, record_id="same").action == "hold"


def test_given_a_recheck_after_the_window_moved_on_then_old_records_no_longer_count() -> None:
    """A hold can end on a quiet feed, long after the last record was counted: the recheck
    moves the window to its own time first, so records that left it do not vouch."""
    gate = _gate(k=2)
    w = WARDS[0]
    gate.check(_rec(w, "25-34", "25-34"), T0, w, record_id="a")
    assert gate.check(_rec(w, "25-34", "25-34"), T0, w, record_id="b").action == "release"
    late = T0 + timedelta(days=8)
    d = gate.recheck(_rec(w, "25-34", "25-34"), w, expired=True, at=late)
    assert d.action == "suppress"
    assert d.fields.get("location") != w.ward_code


def test_given_a_record_without_a_ward_then_it_is_never_held() -> None:
    gate = _gate(hold=timedelta(hours=6))
    no_ward = AreaInfo(None, None, "E07000103", "Watford", None)
    d = gate.check({"location": "E07000103", "victim_dob": "25-34"}, T0, no_ward)
    assert d.action != "hold"


def _released_combinations_hold_k(hold: timedelta, seed: int) -> tuple[int, int, list[str]]:
    """A random stream through the gate with its hold driven as the stage drives it; returns
    (released, at ward level, combinations that fail k). The oracle recounts the population
    of each released combination from the records themselves, not from the gate's counters:
    every record, held or not, is one person sharing each of its own generalisations."""
    rng = random.Random(seed)
    gate = _gate(hold=hold)
    population: Counter[str] = Counter()
    released: list[str] = []
    held: dict[str, tuple[dict[str, Any], AreaInfo, datetime]] = {}
    at_ward = 0
    now = T0

    def key(fields: dict[str, Any]) -> str:
        return json.dumps([fields.get(q) for q in gate.quasi_identifiers])

    def out(fields: dict[str, Any], area: AreaInfo) -> None:
        nonlocal at_ward
        released.append(key(fields))
        at_ward += gate.keeps_ward(fields, area)

    for i in range(400):
        now += timedelta(minutes=rng.randint(1, 40))  # the whole stream fits one window
        area = rng.choice(WARDS)
        rec = _rec(area, rng.choice(BANDS), rng.choice(BANDS))
        population.update({key(f) for f, _ in gate.levels(rec, area)})
        for rid, (f, a, until) in list(held.items()):
            if until <= now:
                out(gate.recheck(f, a, expired=True, record_id=rid).fields, a)
                del held[rid]
        d = gate.check(rec, now, area, record_id=str(i))
        if d.action == "hold":
            held[str(i)] = (rec, area, now + gate.hold)
            continue
        out(d.fields, area)
        for rid, (f, a, _) in list(held.items()):
            if a.ward_code == area.ward_code:
                dj = gate.recheck(f, a, record_id=rid)
                if dj.action != "hold":
                    out(dj.fields, a)
                    del held[rid]
    for rid, (f, a, _) in held.items():
        out(gate.recheck(f, a, expired=True, record_id=rid).fields, a)
    # The district alone is the floor the gate never withholds (delivery discloses it).
    floor = json.dumps(["E07000103", None, None])
    failures = [c for c in set(released) if c != floor and population[c] < gate.k]
    return len(released), at_ward, failures


def test_k_holds_on_every_released_combination_with_and_without_a_hold() -> None:
    for seed in range(3):
        for hold in (timedelta(0), timedelta(hours=6)):
            n, _, failures = _released_combinations_hold_k(hold, seed)
            assert n == 400
            assert failures == [], (seed, hold, failures[:3])


def test_a_hold_puts_more_records_at_ward_level_than_none() -> None:
    _, without, _ = _released_combinations_hold_k(timedelta(0), 7)
    _, with_hold, _ = _released_combinations_hold_k(timedelta(hours=6), 7)
    assert with_hold > without
    assert with_hold >= 0.95 * 400


def test_hold_hours_is_a_protocol_setting_of_hours_not_days() -> None:
    gate = RiskGate.for_protocol(make_protocol(hold_hours=6), "police")
    assert gate.hold == timedelta(hours=6)
    for bad in (0, -1, 25, 72):
        with pytest.raises(ValidationError, match="hold_hours"):
            make_protocol(hold_hours=bad)
    # Unset, it is not in the signed digest: protocols signed before it keep their signatures.
    assert protocol_digest(make_protocol()) != protocol_digest(make_protocol(hold_hours=6))
    assert b"hold_hours" not in protocol_digest(make_protocol())
