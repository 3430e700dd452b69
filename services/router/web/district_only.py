"""District-only records a ward group could not receive, told to it as a count. Pure.

A record the risk gate released only at its district (no ward code) goes to the groups that take
the whole district (district and county groups). A group that takes *wards* of that district
(Halton's Widnes and Runcorn groups) cannot receive it: the hub does not say - and must not - which
ward it came from, so it may not be in the group's wards at all. Such a group is told how many
there were in the districts of its wards, under the protocols it receives and in the categories
it takes, with the page's small-count rule; never which records. Told, not given: the count is
an aggregate at the district, the gate's own floor, which any district group of that protocol
receives record by record.

A record later released again with its ward (the stage's late ward release) stops counting: it
then went to the group of its ward, if any. Records are keyed by (hub record id, protocol): a
record shared under two protocols is two disclosures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.router.subscriptions import Subscription
from services.router.web.records import record_time

#: District-only records remembered (oldest forgotten first; ~1 kB each).
MAX_RECORDS = 100_000


class DistrictOnlyRecords:
    """The shared topic's records that are, so far, only at their district."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self.records: dict[tuple[str, str], SharedRecord] = {}
        self.dropped = 0

    def add(self, rec: SharedRecord) -> None:
        key = (rec.hub_record_id, rec.protocol)
        if rec.ward_code is not None:
            self.records.pop(key, None)  # released again with its ward: no longer district-only
            return
        if rec.district_code is None or key in self.records:
            return
        self.records[key] = rec
        if len(self.records) > self.max_records:
            del self.records[next(iter(self.records))]
            self.dropped += 1


def ward_districts(sub: Subscription, areas: AreaIndex) -> set[str]:
    """Districts in which the group takes some wards but not the whole district."""
    return {areas.wards[c].district_code for c in sub.wards if c in areas.wards} - set(
        sub.districts)


def not_received(records: Iterable[SharedRecord], sub: Subscription, areas: AreaIndex,
                 live: Mapping[str, frozenset[str]], start: datetime | None = None,
                 end: datetime | None = None, *, category: str | None = None,
                 feed: str | None = None) -> list[SharedRecord]:
    """The district-only records in the districts of ``sub``'s wards that ``sub`` did not
    receive, under live protocols naming the group and subscribed by it, in its categories,
    with event time in [start, end) when given."""
    districts = ward_districts(sub, areas)
    if not districts:
        return []
    out = []
    for rec in records:
        if rec.district_code not in districts or sub.covers_area(rec):
            continue
        if sub.group not in live.get(rec.protocol, frozenset()):
            continue
        if rec.protocol.split("@", 1)[0] not in sub.protocols:
            continue
        if not sub.covers_category(rec.category):
            continue
        if (category and rec.category != category) or (feed and rec.feed != feed):
            continue
        if start is not None or end is not None:
            t = record_time(rec, "event")
            if t is None or (start is not None and t < start) or (end is not None and t >= end):
                continue
        out.append(rec)
    return out
