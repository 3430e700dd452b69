"""Ward-level utility of the risk gate: the share of located records that reach their ward group
at ward level, before (no hold) and after (the protocol's ``hold_hours``), with k checked on
every released combination. Pure: the real depersonalise stage, a simulated clock, no Kafka.

    python bench/ward_share.py [--hold-hours 12] [--window-days N]

Two data sets:

* the synthetic county (``demo/synthetic.py``): Hertfordshire, all four feeds, records
  arriving at ``--per-hour`` for ``--days``, each processed at its arrival time, gate starting
  empty (a newly onboarded county). The Hertfordshire protocols as shipped, ward-level ones
  counted (health-county releases districts by design and is left out).
* the police.uk month (deploy/data/police-uk, read by the importer's own parser): the hub has no
  Essex ward boundaries, so no record of it is *located* to a ward and the shipped Essex protocol
  releases districts. To still measure the gate on real, skewed counts, each record's LSOA (a
  smaller cell than a ward, ~1,500 residents) stands in for its ward, under the Essex protocol
  with its location rule set to ward. The month is imported as one batch (``--import-minutes``),
  which is how police.uk data arrives.

"Located" means the stage found the record's ward; "at ward level" means a shared record of it
left depersonalise with its ward code (the router then routes it to the ward's group at ward
level): at once, after its hold, or later by a late ward release (stage.py) within the gate's
window. ``hours_to_ward_*`` say how long that took from arrival. k is recounted for every released
combination of the synthetic runs from the records themselves (not the gate's counters), over the
window ending at the release; ``bound_*`` is the best share any gate with the same rule could reach
on the same arrivals (``ward_share_bound``). Prints rows and writes bench/results/ward_share.json.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.synthetic import Generator
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import FeedName
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT, Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.depersonalise.engine import area_level, release
from services.depersonalise.risk_gate import RiskGate
from services.depersonalise.stage import Depersonaliser, StageResult, area_of, event_time
from services.ingest.police_uk import read_street_csv
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import generate_officer_key, officer_keys_from, sign_protocol
from services.protocols.transforms import AreaInfo

FEEDS: tuple[FeedName, ...] = ("police", "fire", "health", "council")
START = datetime(2026, 6, 1, tzinfo=UTC)


class _Clear:
    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]:
        return {}


@dataclass
class Share:
    located: int = 0
    at_ward: int = 0
    held_max: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    #: Of ``at_ward``: records that reached their ward only by a late ward release.
    late: int = 0
    #: Hours from arrival to the release that carried the ward, per record at ward level.
    delays: list[float] = field(default_factory=list)
    #: Released combinations checked against k, and those found below k (should be none).
    k_checked: int = 0
    k_failures: list[str] = field(default_factory=list)
    #: Arrival times of located records per (feed, ward): for the bound below.
    cells: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.at_ward / self.located if self.located else float("nan")

    def summary(self) -> dict[str, Any]:
        d = sorted(self.delays)
        return {"late_ward_releases": self.late,
                "hours_to_ward_median": round(d[len(d) // 2], 2) if d else None,
                "hours_to_ward_p95": round(d[int(len(d) * 0.95)], 2) if d else None,
                "k_releases_checked": self.k_checked,
                "k_failures": len(self.k_failures), "k_failure_examples": self.k_failures[:5]}


def ward_share_bound(cells: dict[tuple[str, str], list[float]], k: int, window_h: float,
                     within_h: float) -> float:
    """The best share *any* gate with this rule can reach on these arrivals: a record can leave
    with its ward at some time t' within ``within_h`` hours of its arrival only if at least k
    records of its (feed, ward) cell arrived in (t' - window, t']. Ages, property types and
    times withheld, the ward cell is the coarsest combination that still has the ward."""
    ok = n = 0
    for times in cells.values():
        for t in times:
            n += 1
            cands = [x for x in times if t <= x <= t + within_h] + [t + within_h]
            ok += max(bisect.bisect_right(times, c) - bisect.bisect_right(times, c - window_h)
                      for c in cands) >= k
    return ok / n if n else float("nan")


def signed_protocols(directory: Path, hold_hours: float | None) -> tuple[list[Protocol],
                                                                          dict[str, bytes]]:
    protocols = [load_protocol(p).model_copy(update={"hold_hours": hold_hours})
                 for p in sorted(directory.glob("*.yaml"))]
    keys, pems = {}, {}
    for party in sorted({x for p in protocols for x in p.parties}):
        keys[party], pems[party], _ = generate_officer_key()
    out = []
    for p in protocols:
        for party in p.parties:
            p = sign_protocol(p, keys[party], party, party)
        out.append(p)
    return out, pems


def synthetic_arrivals(areas: AreaIndex, days: float, per_hour: float, seed: int = 115
                       ) -> Iterator[tuple[datetime, RawRecord]]:
    gen = Generator(areas, seed=seed)
    gap = timedelta(hours=1 / per_hour)
    now = START
    for i in range(int(days * 24 * per_hour)):
        feed = gen.rng.choice(FEEDS)
        ward, rec = gen.record(feed, now)
        yield now, RawRecord(envelope=Envelope(
            hub_record_id=f"s{i}", partner=gen.partner_for(feed, ward), feed=feed,
            source_id=rec["source_id"], received_at=now), fields=rec)
        now += gap


def run_stage(areas: AreaIndex, arrivals: Iterable[tuple[datetime, RawRecord]],
              hold_hours: float | None, window: timedelta = timedelta(days=7)
              ) -> tuple[Share, dict[str, Share]]:
    """Every arrival through the real stage at its arrival time; held records released by
    ``due`` as the clock moves, and what is still held at the end released as expired."""
    protocols, pems = signed_protocols(REPO_ROOT / "deploy" / "hertfordshire" / "protocols",
                                       hold_hours)
    ward_level = {p.ref for p in protocols for f in p.feeds if area_level(p, f) == "ward"}
    by_ref = {p.ref: p for p in protocols}
    total, per_feed = Share(), {str(f): Share() for f in FEEDS}
    located: dict[str, datetime] = {}
    # k, recounted from the records themselves, not the gate's counters: per (protocol, feed)
    # and combination, the processing times of every record one of whose own generalisations
    # it is. A release at time r is checked against the records in (r - window, r].
    population: dict[tuple[str, str], dict[str, list[datetime]]] = {}

    def combo(ref: str, fields: dict[str, Any]) -> str:
        return json.dumps([fields.get(q) for q in by_ref[ref].quasi_identifiers],
                          sort_keys=True, default=str)

    def check_k(rec: Any) -> None:
        c = combo(rec.protocol, rec.fields)
        values = json.loads(c)
        if rec.ward_code is None and all(v is None for v in values[1:]):
            return  # the district floor, which the gate documents it never withholds
        times = population.get((rec.protocol, rec.feed), {}).get(c, [])
        n = bisect.bisect_right(times, rec.released_at) - bisect.bisect_right(
            times, rec.released_at - window)
        total.k_checked += 1
        if n < by_ref[rec.protocol].k:
            total.k_failures.append(f"{rec.protocol} {rec.feed} {c}: {n}")

    def tally(result: StageResult) -> None:
        for rec in result.shared:
            if rec.protocol in ward_level:
                check_k(rec)
            if rec.protocol in ward_level and rec.hub_record_id in located:
                for s in (total, per_feed[rec.feed]):
                    s.at_ward += rec.ward_code is not None
                if rec.ward_code is not None:
                    total.delays.append(
                        (rec.released_at - located[rec.hub_record_id]).total_seconds() / 3600)
        total.late += sum(1 for _, ref, a in result.released_held
                          if a == "late_ward" and ref in ward_level)
        for ref, action in result.gate.items():
            if ref in ward_level:
                total.actions[action] += 1

    def count_population(stage: Depersonaliser, raw: RawRecord, now: datetime) -> None:
        feed = raw.envelope.feed
        record = dict(raw.fields)
        area = area_of(record, areas)
        for p in stage.protocols.live_for(raw.envelope.partner, feed, now.date()):
            if p.ref not in ward_level:
                continue
            rel = release(p, feed, record, area=area, pseudonym_key=b"k" * 32, key_epoch=1,
                          event_time=event_time(feed, record))
            cells = population.setdefault((p.ref, feed), {})
            for c in {combo(p.ref, f) for f, _ in stage.gate_for(p, feed).levels(rel.fields,
                                                                                  area)}:
                cells.setdefault(c, []).append(now)

    with tempfile.TemporaryDirectory() as tmp:
        stage = Depersonaliser(areas=areas, opener=_Clear(),
                               keys=PseudonymKeyring(Path(tmp) / "ring", os.urandom(32)),
                               gate_window=window)
        stage.protocols = ProtocolSet(protocols, officer_keys=officer_keys_from(pems))
        last = START
        for now, raw in arrivals:
            tally(stage.due(now))
            count_population(stage, raw, now)
            result = stage.process(raw, now=now, today=now.date())
            loc = raw.fields.get("location")
            if isinstance(loc, dict) and areas.locate(loc["lat"], loc["lon"]) is not None:
                located[raw.envelope.hub_record_id] = now
                if any(ref in ward_level for ref in result.gate):
                    ward = areas.locate(loc["lat"], loc["lon"])
                    total.cells.setdefault((raw.envelope.feed, str(getattr(ward, "code", ward))),
                                           []).append((now - START).total_seconds() / 3600)
                # Counted by the gate's decisions on this record: result.shared may also hold
                # earlier records this one released from their hold.
                n = sum(1 for ref in result.gate if ref in ward_level)
                for s in (total, per_feed[raw.envelope.feed]):
                    s.located += n
            tally(result)
            total.held_max = max(total.held_max, stage.held)
            last = now
        tally(stage.due(last + timedelta(days=3)))
    return total, per_feed



def police_uk_rows(csv_path: Path) -> list[dict[str, Any]]:
    """The importer's own parse of every located row, with its LSOA code as ``_cell``."""
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        lsoas = [row.get("LSOA code", "") for row in csv.DictReader(fh)]
    rows = []
    for line, rec in read_street_csv(csv_path):
        cell = lsoas[line - 2] if 0 <= line - 2 < len(lsoas) else ""
        if rec.get("location") and cell:
            rows.append({**rec, "_cell": cell})
    return rows


def police_uk_lsoa(rows: list[dict[str, Any]], hold_hours: float | None,
                   import_minutes: float = 10.0) -> tuple[Share, list[str], int]:
    """The police.uk month through the Essex protocol's gate, LSOA standing in for the ward,
    imported as one batch over ``import_minutes``. Returns the share, the released combinations
    that fail k (should be none) and how many combinations were checked."""
    essex = load_protocol(REPO_ROOT / "deploy" / "essex" / "protocols" / "police-uk-essex.yaml")
    rules = essex.feeds["police"].model_copy(deep=True)
    rules.fields["location"] = rules.fields["location"].model_copy(
        update={"params": {**rules.fields["location"].params, "to": "ward"}})
    proto = essex.model_copy(update={"feeds": {"police": rules}, "hold_hours": hold_hours})
    gate = RiskGate.for_protocol(proto, "police")
    gap = timedelta(minutes=import_minutes) / max(len(rows), 1)
    share = Share()
    held: dict[int, tuple[dict[str, Any], AreaInfo, datetime]] = {}
    by_cell: dict[str, list[int]] = {}
    released: list[dict[str, Any]] = []

    def out(i: int, fields: dict[str, Any], area: AreaInfo, action: str) -> None:
        share.at_ward += gate.keeps_ward(fields, area)
        share.actions[action] += 1
        released.append(fields)

    now = START
    for i, rec in enumerate(rows):
        area = _area(rec)
        when = datetime.fromisoformat(rec["occurred_at"].replace("Z", "+00:00"))
        rel = release(proto, "police", rec, area=area, pseudonym_key=None, key_epoch=None,
                      event_time=when)
        share.located += 1
        for j, (f, a, until) in list(held.items()):
            if until <= now:
                d = gate.recheck(f, a, expired=True, record_id=f"p{j}")
                out(j, d.fields, a, d.action)
                del held[j]
                by_cell[a.ward_code or ""].remove(j)
        d = gate.check(rel.fields, now, area, record_id=f"p{i}")
        if d.action == "hold":
            held[i] = (rel.fields, area, now + gate.hold)
            by_cell.setdefault(rec["_cell"], []).append(i)
        else:
            out(i, d.fields, area, d.action)
            for j in list(by_cell.get(rec["_cell"], [])):
                f, a, _ = held[j]
                dj = gate.recheck(f, a, record_id=f"p{j}")
                if dj.action != "hold":
                    out(j, dj.fields, a, dj.action)
                    del held[j]
                    by_cell[rec["_cell"]].remove(j)
        share.held_max = max(share.held_max, len(held))
        now += gap
    for j, (f, a, _) in held.items():
        d = gate.recheck(f, a, expired=True, record_id=f"p{j}")
        out(j, d.fields, a, d.action)
    # k on every released combination, recounted from the rows themselves (not the gate's
    # counters): the month fits one window, so every row counts towards every combination its
    # own generalisations share.
    qis = proto.quasi_identifiers
    population: Counter[str] = Counter()
    for rec in rows:
        area = _area(rec)
        fields = release(proto, "police", rec, area=area, pseudonym_key=None, key_epoch=None,
                         event_time=None).fields
        population.update({json.dumps([f.get(q) for q in qis]) for f, _ in
                           gate.levels(fields, area)})
    combos = {json.dumps([f.get(q) for q in qis]) for f in released}
    # The district is the gate's floor (a district group's topic discloses it anyway), so a
    # district-only combination is reported apart, not as a failure.
    floor = [c for c in combos if json.loads(c) == [None, json.loads(c)[-1]]
             and not str(json.loads(c)[-1]).startswith("E01")]
    failures = [f"{c}: {population[c]} < {proto.k}" for c in sorted(combos)
                if c not in floor and population[c] < proto.k]
    share.actions["district_floor_combinations_below_k"] = sum(
        1 for c in floor if population[c] < proto.k)
    return share, failures, len(combos)


def _area(rec: dict[str, Any]) -> AreaInfo:
    return AreaInfo(rec["_cell"], rec["_cell"], None, rec["district_hint"], None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hold-hours", type=float, default=12.0)
    ap.add_argument("--window-days", type=float, default=None,
                    help="Only the realistic scenario, with this gate window (what-if).")
    args = ap.parse_args()
    areas = AreaIndex.load(Settings().boundaries_dir)
    out: dict[str, Any] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "runs": []}
    # (name, days, records per hour): the demo's rate (20/s) for ten minutes, and a rate near
    # Hertfordshire's real volume (police alone record ~10 crimes an hour) over a four-week
    # tasking period, from a cold start both times.
    scenarios = [("synthetic county, demo rate 20/s, 10 min", 10 / 1440, 72_000.0),
                 ("synthetic county, 20/h, 28 days", 28.0, 20.0)]
    if args.window_days:
        window = timedelta(days=args.window_days)
        for hold in (None, args.hold_hours):
            total, _ = run_stage(areas, synthetic_arrivals(areas, 28.0, 20.0), hold, window)
            print(json.dumps({"data": "synthetic county, 20/h, 28 days",
                              "gate_window_days": args.window_days, "hold_hours": hold,
                              "share": round(total.share, 4), "located": total.located}))
        return
    for (name, days, per_hour), hold in [(sc, h) for sc in scenarios
                                         for h in (None, args.hold_hours)]:
        total, per_feed = run_stage(areas, synthetic_arrivals(areas, days, per_hour), hold)
        k = 3  # every shipped Hertfordshire protocol
        row = {"data": name, "hold_hours": hold, "located": total.located,
               "at_ward": total.at_ward, "share": round(total.share, 4),
               "held_max": total.held_max, "actions": dict(total.actions),
               "per_feed": {f: round(s.share, 4) for f, s in per_feed.items() if s.located},
               **total.summary(),
               # What any gate could reach on the same arrivals (7-day window, k=3): with the
               # ward given only within the hold, and within the window (late ward release).
               "bound_within_hold": round(ward_share_bound(total.cells, k, 168, hold or 0), 4),
               "bound_within_window": round(ward_share_bound(total.cells, k, 168, 168), 4)}
        out["runs"].append(row)
        print(json.dumps(row))
    rows = police_uk_rows(REPO_ROOT / "deploy" / "data" / "police-uk" / "2018-01-essex-street.csv")
    for hold in (None, args.hold_hours):
        share, failures, checked = police_uk_lsoa(rows, hold)
        row = {"data": "police.uk 2018-01 (LSOA as ward)", "hold_hours": hold,
               "located": share.located, "at_ward": share.at_ward,
               "share": round(share.share, 4), "held_max": share.held_max,
               "actions": dict(share.actions), "combinations_checked": checked,
               "k_failures": failures[:5]}
        out["runs"].append(row)
        print(json.dumps(row))
    path = Path(__file__).parent / "results" / "ward_share.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
