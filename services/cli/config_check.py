"""``s115hub config check``: everything about a county directory that can be known before it is
published, checked against the boundaries and the protocols. Pure: the caller passes the live
config (or None) for the diff.

Errors stop ``config apply`` from being worth running (a ward code that does not exist routes
nothing, silently; a protocol naming a party the county does not have is dead); warnings are
things an officer should look at (a protocol past its review date).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from services.core.areas import AreaIndex
from services.core.config.county import County, Group, load_county
from services.core.config.publish import Message
from services.core.errors import HubError


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"ERROR   {e}" for e in self.errors] + [f"WARNING {w}" for w in self.warnings]
                + [f"ok      {n}" for n in self.notes])


def check_group(g: Group, county: County, areas: AreaIndex, report: Report) -> None:
    where = f"group {g.id}"
    for code in g.districts:
        if code not in areas.district_names:
            report.errors.append(f"{where}: district {code!r} is not in the boundaries "
                                 f"(districts: {', '.join(sorted(areas.district_names))})")
    for code in g.wards:
        if code not in areas.wards:
            near = sorted(w for w in areas.wards if w[:7] == code[:7])[:3]
            report.errors.append(f"{where}: ward {code!r} is not in the boundaries"
                                 + (f" (did you mean {', '.join(near)}?)" if near else ""))
    for name in g.district_names:
        if name.casefold() in areas.district_by_name:
            code = areas.district_by_name[name.casefold()]
            report.notes.append(f"{where}: district name {name!r} is {code} in the boundaries")
        else:
            report.warnings.append(f"{where}: district name {name!r} is not in the boundaries; "
                                   "only records whose district hint says so will match")
    if g.county_wide:
        found = areas.districts_of_county(county.county)
        if not found:
            report.errors.append(
                f"{where}: county_wide, but county {county.county!r} matches no district in "
                f"the boundaries (counties there: {', '.join(areas.counties)}; a district code "
                "also works)")
        else:
            report.notes.append(f"{where}: county_wide covers {len(found)} district(s): "
                                f"{', '.join(found)}")
    if not (g.districts or g.wards or g.district_names or g.area or g.county_wide):
        report.warnings.append(f"{where}: no districts, wards, area or county_wide: it will "
                               "receive nothing")


def check_protocol(path: Path, county: County, today: date, report: Report) -> Any:
    from services.protocols.protocol import load_protocol

    try:
        p = load_protocol(path)
    except HubError as exc:
        report.errors.append(str(exc))
        return None
    where = f"protocol {p.ref} ({path.name})"
    partners = {x.id: x for x in county.partners}
    groups = {x.id: x for x in county.groups}
    for party in p.disclosers:
        if party in groups:
            report.errors.append(f"{where}: discloser {party!r} is a group, not a partner")
        elif party not in partners:
            report.errors.append(f"{where}: discloser {party!r} is not a partner in the county "
                                 f"file")
        else:
            missing = [f for f in p.feeds if f not in partners[party].feeds]
            if len(missing) == len(p.feeds):
                report.warnings.append(f"{where}: {party} publishes none of the protocol's "
                                       f"feeds ({', '.join(p.feeds)})")
    for party in p.recipients:
        if party not in groups:
            report.errors.append(f"{where}: recipient {party!r} is not a group in the county "
                                 "file")
    officers = {p.id: p.officer for p in county.partners} | {g.id: g.officer
                                                              for g in county.groups}
    for sig in p.signatures:
        want = officers.get(sig.party)
        if want is not None and sig.officer != want:
            report.errors.append(f"{where}: {sig.party}'s signature names officer "
                                 f"{sig.officer!r}, the county file names {want!r}")
    unsigned = [x for x in p.parties if x not in {s.party for s in p.signatures}]
    if unsigned:
        report.warnings.append(f"{where}: not yet signed by {', '.join(unsigned)} (it releases "
                               "nothing until every party has signed)")
    if not p.valid_from <= p.review_by <= p.valid_until:
        report.errors.append(f"{where}: review_by {p.review_by} is outside "
                             f"{p.valid_from}..{p.valid_until}")
    if p.valid_until < today:
        report.warnings.append(f"{where}: expired on {p.valid_until}")
    elif p.review_by < today:
        report.warnings.append(f"{where}: review was due on {p.review_by}")
    if p.valid_from > today:
        report.notes.append(f"{where}: valid from {p.valid_from}")
    return p


def check_county_dir(config_dir: Path, areas: AreaIndex, today: date,
                     protocols_dir: Path | None = None, officers_dir: Path | None = None
                     ) -> Report:
    report = Report()
    try:
        county = load_county(config_dir / "county.yaml")
    except (HubError, OSError) as exc:
        report.errors.append(str(exc))
        return report
    report.notes.append(f"county {county.county!r}: {len(county.partners)} partners, "
                        f"{len(county.groups)} groups")
    for g in county.groups:
        check_group(g, county, areas, report)
    pdir = protocols_dir or config_dir / "protocols"
    protocols = [p for path in sorted(pdir.glob("*.yaml"))
                 if (p := check_protocol(path, county, today, report)) is not None]
    if not protocols:
        report.warnings.append(f"no protocols in {pdir}: nothing will be released")
    ids = {p.id for p in protocols}
    for g in county.groups:
        for pid in g.protocols:
            if pid not in ids:
                report.errors.append(f"group {g.id}: protocol {pid!r} is not in {pdir}")
    known = {p.id for p in county.partners} | {g.id for g in county.groups}
    odir = officers_dir or config_dir / "officers"
    for pub in sorted(odir.glob("*/*.pub.pem")):
        if pub.parent.name not in known:
            report.errors.append(f"officer key {pub}: {pub.parent.name!r} is not a partner or "
                                 "group in the county file")
    return report


def diff_lines(wanted: list[Message], live: Mapping[str, bytes | None]) -> list[str]:
    """What ``config apply`` would change on the config topic, key by key."""
    from services.core.config.state import encode

    out = []
    same = 0
    for key, value in wanted:
        now = live.get(key)
        if now is None:
            out.append(f"  + {key}  (new)")
        elif now != encode(value):
            out.append(f"  ~ {key}  (changed)")
        else:
            same += 1
    stale = sorted(k for k, v in live.items() if v is not None
                   and k not in {key for key, _ in wanted})
    out += [f"  = {k}  (live, not in this directory; apply leaves it as it is)" for k in stale]
    out.append(f"  {same} unchanged")
    return out
