"""Who is entitled to a shared record. Deny by default: a group receives a record only when a live
protocol names the group as a recipient, the group subscribes to that protocol, the record's area
is in the group's areas and its category is subscribed. Pure.

A group's areas are the union of

* ``districts`` (LAD codes) and ``district_names`` (districts outside the hub's boundaries, by
  name, as police.uk gives them);
* ``wards`` (ward codes);
* ``area``: its own GeoJSON polygon, resolved once to wards. A ward is in when at least
  ``area_min_overlap`` (default 0.5) of the ward's own area lies inside the polygon. An area
  fraction rather than "centroid inside": a centroid can fall outside a crescent-shaped ward,
  and the fraction says plainly how much of a ward the group must have drawn to get it. With
  0.5, a polygon that cuts a ward in two gives the ward to the side holding most of it.
  Fractions are of areas in lon/lat degrees; at county scale the projection's stretch is the
  same for a ward and its part inside the polygon, so it cancels in the ratio.
* ``county_wide``: every district the boundaries place in the county of the config (the county
  coordinating group). What it receives is "aggregated where its protocol says so": a
  protocol whose location transform stops at the district (health-county) releases records with
  a district and no ward, and such a record matches a group by district only. The router never
  refines an area and never needs to coarsen one: depersonalise has applied the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.county import County, Group, group_area_geometry


@dataclass(frozen=True)
class Subscription:
    group: str
    protocols: frozenset[str]
    districts: frozenset[str]
    wards: frozenset[str]
    district_names: frozenset[str]
    categories: frozenset[str]

    @classmethod
    def of(cls, g: Group, extra_wards: Iterable[str] = (),
           extra_districts: Iterable[str] = ()) -> Subscription:
        return cls(g.id, frozenset(g.protocols),
                   frozenset(g.districts) | frozenset(extra_districts),
                   frozenset(g.wards) | frozenset(extra_wards),
                   frozenset(n.casefold() for n in g.district_names), frozenset(g.categories))

    def covers_ward(self, ward_code: str | None, district_code: str | None) -> bool:
        return ((ward_code is not None and ward_code in self.wards)
                or (district_code is not None and district_code in self.districts))

    def covers_area(self, rec: SharedRecord) -> bool:
        if self.covers_ward(rec.ward_code, rec.district_code):
            return True
        return rec.district_name is not None and rec.district_name.casefold() in self.district_names

    def covers_category(self, category: str) -> bool:
        return "*" in self.categories or category in self.categories


def wards_in_polygon(geometry: object, areas: AreaIndex, min_overlap: float = 0.5) -> list[str]:
    """Ward codes whose area lies inside ``geometry`` by at least ``min_overlap`` (0..1]."""
    from shapely.geometry.base import BaseGeometry

    assert isinstance(geometry, BaseGeometry)
    out = []
    for code in areas.wards_intersecting(geometry):
        ward = areas.wards[code].geometry
        if ward.area > 0 and ward.intersection(geometry).area / ward.area >= min_overlap:
            out.append(code)
    return sorted(out)


def county_districts(county_name: str, areas: AreaIndex) -> list[str]:
    # Not a literal match: "Halton" must find the boundary file's "Halton (unitary)"
    # (`s115hub config check` refuses a county that still matches nothing).
    return areas.districts_of_county(county_name)


def subscription_for(g: Group, county_name: str, areas: AreaIndex | None) -> Subscription:
    """A group's subscription with its polygon and county-wide areas resolved against
    ``areas`` (without boundaries, only its listed districts and wards count)."""
    wards: list[str] = []
    districts: list[str] = []
    if areas is not None:
        if g.area is not None:
            wards = wards_in_polygon(group_area_geometry(g.area), areas, g.area_min_overlap)
        if g.county_wide:
            districts = county_districts(county_name, areas)
    return Subscription.of(g, wards, districts)


def subscriptions_for(county: County | None, areas: AreaIndex | None) -> list[Subscription]:
    if county is None:
        return []
    return [subscription_for(g, county.county, areas) for g in county.groups]


def entitled_groups(rec: SharedRecord, subs: Iterable[Subscription],
                    live_recipients: Mapping[str, frozenset[str]]) -> list[str]:
    """Groups that may receive ``rec``. ``live_recipients`` maps a live protocol ref (id@version)
    to the groups it names; a ref that is absent is not live, so nobody receives under it."""
    recipients = live_recipients.get(rec.protocol, frozenset())
    protocol_id = rec.protocol.split("@", 1)[0]
    return [
        s.group for s in subs
        if s.group in recipients and protocol_id in s.protocols
        and s.covers_area(rec) and s.covers_category(rec.category)
    ]
