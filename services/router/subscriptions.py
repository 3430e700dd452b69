"""Who is entitled to a shared record. Deny by default: a group receives a record only when a live
protocol names the group as a recipient, the group subscribes to that protocol, the record's area
is in the group's areas and its category is subscribed. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from schemas.shared import SharedRecord
from services.core.county import Group


@dataclass(frozen=True)
class Subscription:
    group: str
    protocols: frozenset[str]
    districts: frozenset[str]
    wards: frozenset[str]
    district_names: frozenset[str]
    categories: frozenset[str]

    @classmethod
    def of(cls, g: Group, extra_wards: Iterable[str] = ()) -> Subscription:
        return cls(g.id, frozenset(g.protocols), frozenset(g.districts),
                   frozenset(g.wards) | frozenset(extra_wards),
                   frozenset(n.casefold() for n in g.district_names), frozenset(g.categories))

    def covers_area(self, rec: SharedRecord) -> bool:
        if rec.ward_code is not None and rec.ward_code in self.wards:
            return True
        if rec.district_code is not None and rec.district_code in self.districts:
            return True
        return rec.district_name is not None and rec.district_name.casefold() in self.district_names

    def covers_category(self, category: str) -> bool:
        return "*" in self.categories or category in self.categories


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
