"""Subscription matching for every form: districts, wards, district names, the group's own
polygon (one that cuts across wards), county-wide; categories, protocols, deny by default."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from shapely.geometry import box, mapping
from shapely.ops import unary_union

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.county import County, Group
from services.core.config.settings import Settings
from services.router.subscriptions import (
    Subscription,
    entitled_groups,
    subscription_for,
    subscriptions_for,
    wards_in_polygon,
)

AREAS = AreaIndex.load(Settings().boundaries_dir)
WATFORD, STEVENAGE, HALTON = "E07000103", "E07000243", "E06000006"
LIVE = {"police-district@1": frozenset({"grp-a", "grp-b"})}


def group(**kw: Any) -> Group:
    base: dict[str, Any] = {"id": "grp-a", "name": "A", "officer": "Chair",
                            "protocols": ["police-district"]}
    return Group(**{**base, **kw})


def rec(ward: str | None = None, district: str | None = None, *, category: str = "burglary",
        protocol: str = "police-district@1", district_name: str | None = None) -> SharedRecord:
    if ward is not None:
        district = AREAS.wards[ward].district_code
    return SharedRecord(hub_record_id="r1", partner="herts-police", feed="police",
                        category=category, ward_code=ward, district_code=district,
                        district_name=district_name, fields={}, protocol=protocol,
                        released_at=datetime(2026, 3, 2, tzinfo=UTC))


def first_ward(district: str) -> str:
    return sorted(w.code for w in AREAS.wards_in(district))[0]


class TestAreaForms:
    def test_given_a_district_subscription_then_its_wards_match_and_others_do_not(self) -> None:
        sub = Subscription.of(group(districts=[WATFORD]))
        assert entitled_groups(rec(first_ward(WATFORD)), [sub], LIVE) == ["grp-a"]
        assert entitled_groups(rec(first_ward(STEVENAGE)), [sub], LIVE) == []

    def test_given_a_district_level_record_then_it_matches_by_district_only(self) -> None:
        sub = Subscription.of(group(districts=[WATFORD]))
        assert entitled_groups(rec(None, WATFORD), [sub], LIVE) == ["grp-a"]
        ward_sub = Subscription.of(group(wards=[first_ward(WATFORD)]))
        assert entitled_groups(rec(None, WATFORD), [ward_sub], LIVE) == []

    def test_given_a_ward_subscription_then_only_that_ward_matches(self) -> None:
        w1, w2 = sorted(w.code for w in AREAS.wards_in(WATFORD))[:2]
        sub = Subscription.of(group(wards=[w1]))
        assert entitled_groups(rec(w1), [sub], LIVE) == ["grp-a"]
        assert entitled_groups(rec(w2), [sub], LIVE) == []

    def test_given_district_names_then_matching_ignores_case(self) -> None:
        sub = Subscription.of(group(district_names=["Basildon"]))
        assert entitled_groups(rec(None, None, district_name="BASILDON"), [sub], LIVE) == ["grp-a"]
        assert entitled_groups(rec(None, None, district_name="Harlow"), [sub], LIVE) == []

    def test_given_county_wide_then_every_district_of_the_county_is_covered(self) -> None:
        county = County(county="Hertfordshire", partners=[],
                        groups=[group(county_wide=True)])
        [sub] = subscriptions_for(county, AREAS)
        herts = {w.district_code for w in AREAS.wards.values()
                 if AREAS.district_county[w.district_code] == "Hertfordshire"}
        assert sub.districts == herts
        assert len(herts) == 10
        assert entitled_groups(rec(first_ward(HALTON)), [sub], LIVE) == []


def cut_of(geom: Any, fraction: float) -> Any:
    """The western part of ``geom`` holding ``fraction`` of its area (bisection on a cut line)."""
    minx, miny, maxx, maxy = geom.bounds
    lo, hi = minx, maxx
    for _ in range(60):
        mid = (lo + hi) / 2
        if geom.intersection(box(minx - 1, miny - 1, mid, maxy + 1)).area / geom.area < fraction:
            lo = mid
        else:
            hi = mid
    return geom.intersection(box(minx - 1, miny - 1, hi, maxy + 1))


@pytest.fixture(scope="module")
def polygon() -> tuple[Any, str, str, str]:
    """A polygon holding all of ward A, 60% of ward B and 30% of ward C (by construction)."""
    a, b, c = sorted(w.code for w in AREAS.wards_in(STEVENAGE))[:3]
    geom = unary_union([AREAS.wards[a].geometry,
                        cut_of(AREAS.wards[b].geometry, 0.6),
                        cut_of(AREAS.wards[c].geometry, 0.3)])
    return geom, a, b, c


class TestPolygon:

    def test_given_a_polygon_cutting_wards_then_wards_mostly_inside_are_in(
            self, polygon: tuple[Any, str, str, str]) -> None:
        geom, a, b, c = polygon
        got = set(wards_in_polygon(geom, AREAS, 0.5))
        assert {a, b} <= got
        assert c not in got
        # The polygon really cuts C (it intersects it), so C is excluded by the fraction rule.
        assert geom.intersects(AREAS.wards[c].geometry)

    def test_given_a_higher_threshold_then_the_partly_covered_ward_drops_out(
            self, polygon: tuple[Any, str, str, str]) -> None:
        geom, a, b, _ = polygon
        got = set(wards_in_polygon(geom, AREAS, 0.75))
        assert a in got
        assert b not in got

    def test_given_a_group_polygon_then_records_follow_its_resolved_wards(
            self, polygon: tuple[Any, str, str, str]) -> None:
        geom, a, b, c = polygon
        g = group(area={"type": "Feature", "properties": {}, "geometry": mapping(geom)})
        sub = subscription_for(g, "Hertfordshire", AREAS)
        assert entitled_groups(rec(a), [sub], LIVE) == ["grp-a"]
        assert entitled_groups(rec(b), [sub], LIVE) == ["grp-a"]
        assert entitled_groups(rec(c), [sub], LIVE) == []
        assert STEVENAGE not in sub.districts  # a polygon never widens to whole districts

    def test_given_a_point_instead_of_a_polygon_then_the_group_is_refused_naming_area(
            self) -> None:
        with pytest.raises(ValidationError) as exc:
            group(area={"type": "Point", "coordinates": [0.0, 51.0]})
        assert "area" in str(exc.value)
        assert "Polygon" in str(exc.value)

    def test_given_a_self_intersecting_polygon_then_the_group_is_refused(self) -> None:
        bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
        with pytest.raises(ValidationError, match="self-intersecting"):
            group(area=bowtie)


class TestDenyByDefault:
    def test_given_an_unsubscribed_category_then_nothing_is_delivered(self) -> None:
        sub = Subscription.of(group(districts=[WATFORD], categories=["robbery"]))
        assert entitled_groups(rec(first_ward(WATFORD)), [sub], LIVE) == []
        assert entitled_groups(rec(first_ward(WATFORD), category="robbery"), [sub],
                               LIVE) == ["grp-a"]

    def test_given_a_protocol_the_group_does_not_name_then_nothing_is_delivered(self) -> None:
        sub = Subscription.of(group(districts=[WATFORD], protocols=["fire-district"]))
        assert entitled_groups(rec(first_ward(WATFORD)), [sub], LIVE) == []

    def test_given_a_protocol_not_live_or_not_naming_the_group_then_nothing(self) -> None:
        sub = Subscription.of(group(districts=[WATFORD]))
        assert entitled_groups(rec(first_ward(WATFORD)), [sub], {}) == []
        assert entitled_groups(rec(first_ward(WATFORD)), [sub],
                               {"police-district@1": frozenset({"grp-b"})}) == []

    def test_given_a_group_with_no_areas_then_it_receives_nothing(self) -> None:
        sub = Subscription.of(group())
        assert entitled_groups(rec(first_ward(WATFORD)), [sub], LIVE) == []
