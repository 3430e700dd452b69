"""A group of single wards is told how many district-only records its wards' districts had: it
cannot receive them (the hub does not know their ward), so it gets a count, never the records;
only under its live protocols and categories, and a record later released with its ward stops
counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.core.areas import AreaIndex
from services.router.subscriptions import Subscription
from services.router.web.district_only import DistrictOnlyRecords, not_received, ward_districts
from tests.unit.router_web.conftest import shared

START = datetime(2026, 3, 2, tzinfo=UTC)
CALLOWLAND, CENTRAL = "E05004838", "E05004839"  # wards of Watford, E07000103
LIVE = {"police-district@1": frozenset({"grp-callowland", "grp-watford"})}


def _sub(group: str, *, wards: tuple[str, ...] = (), districts: tuple[str, ...] = (),
         categories: tuple[str, ...] = ("*",)) -> Subscription:
    return Subscription(group, frozenset({"police-district"}), frozenset(districts),
                        frozenset(wards), frozenset(), frozenset(categories))


def _at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat()


def test_a_ward_group_is_told_the_district_only_records_of_its_district(
        areas: AreaIndex) -> None:
    seen = DistrictOnlyRecords()
    for i in range(4):
        seen.add(shared(f"d{i}", _at(1 + i), ward=None))
    seen.add(shared("w1", _at(1), ward=CENTRAL))                       # at ward level: not counted
    seen.add(shared("other", _at(1), ward=None, district="E07000098"))  # another district
    seen.add(shared("late", _at(2), ward=None))
    seen.add(shared("late", _at(2), ward=CENTRAL))  # released again with its ward: not any more
    ward_group = _sub("grp-callowland", wards=(CALLOWLAND,))
    assert ward_districts(ward_group, areas) == {"E07000103"}
    got = not_received(seen.records.values(), ward_group, areas, LIVE)
    assert sorted(r.hub_record_id for r in got) == ["d0", "d1", "d2", "d3"]
    # Within a period, by event time.
    assert len(not_received(seen.records.values(), ward_group, areas, LIVE,
                            START + timedelta(days=2), START + timedelta(days=4))) == 2


def test_only_under_its_live_protocols_and_categories_and_not_for_district_groups(
        areas: AreaIndex) -> None:
    seen = DistrictOnlyRecords()
    seen.add(shared("d1", _at(1), ward=None))
    seen.add(shared("drugs", _at(1), ward=None, category="drugs"))
    recs = list(seen.records.values())
    assert not_received(recs, _sub("grp-callowland", wards=(CALLOWLAND,)), areas, {}) == []
    assert not_received(recs, _sub("grp-elsewhere", wards=(CALLOWLAND,)), areas, LIVE) == []
    only_drugs = _sub("grp-callowland", wards=(CALLOWLAND,), categories=("drugs",))
    assert [r.hub_record_id for r in not_received(recs, only_drugs, areas, LIVE)] == ["drugs"]
    # A district group receives these records themselves: nothing to tell it.
    district_group = _sub("grp-watford", districts=("E07000103",), wards=(CALLOWLAND,))
    assert ward_districts(district_group, areas) == set()
    assert not_received(recs, district_group, areas, LIVE) == []


def test_the_memory_is_bounded_oldest_first() -> None:
    seen = DistrictOnlyRecords(max_records=2)
    for i in range(3):
        seen.add(shared(f"d{i}", _at(1), ward=None))
    assert [k[0] for k in seen.records] == ["d1", "d2"]
    assert seen.dropped == 1


def test_the_tasking_pack_says_how_many_the_group_was_told_of() -> None:
    from services.router.web.pack import pack_html

    def pack(told: int) -> str:
        return pack_html(group="grp-callowland", name="Callowland", start=START,
                         end=START + timedelta(days=7), records=[], alerts=[],
                         wards={CALLOWLAND: "Callowland"}, svg="<svg></svg>", suppress_below=5,
                         district_only_not_received=told, generated_at=START,
                         generated_by="analyst@grp-callowland")

    assert "<5 more records in the district of this group's wards" in pack(3)
    assert "7 more records in the district" in pack(7)
    assert "more records in the district" not in pack(0)
