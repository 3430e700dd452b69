"""Export selection and formats (pure)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from shapely.geometry import Point

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.router.web.records import CSV_COLUMNS, record_time, select, to_csv, to_geojson
from tests.unit.router_web.conftest import shared

T0 = datetime(2026, 3, 2, tzinfo=UTC)
T1 = datetime(2026, 3, 9, tzinfo=UTC)


def test_event_time_reads_the_feed_specific_field_and_treats_naive_as_utc() -> None:
    def event_time(rec: SharedRecord) -> datetime | None:
        return record_time(rec, "event")

    assert event_time(shared("a", "2026-03-02T10:00:00+01:00")) == datetime(2026, 3, 2, 9,
                                                                             tzinfo=UTC)
    assert event_time(shared("b", "2026-03-02T10:00:00")) == datetime(2026, 3, 2, 10, tzinfo=UTC)
    council = shared("c", None, reported_at="2026-03-04T08:00:00Z").model_copy(
        update={"feed": "council"})
    assert event_time(shared("p", None, reported_at="2026-03-04T08:00:00Z")) is None  # police
    assert event_time(council) == datetime(2026, 3, 4, 8, tzinfo=UTC)
    assert event_time(shared("d", None)) is None
    assert event_time(shared("e", "last tuesday")) is None


def test_range_is_half_open_deduplicated_and_needs_an_event_time() -> None:
    recs = [shared("before", "2026-03-01T23:00:00Z"), shared("first", "2026-03-02T00:00:00Z"),
            shared("mid", "2026-03-05T12:00:00Z"), shared("mid", "2026-03-05T12:00:00Z"),
            shared("at-end", "2026-03-09T00:00:00Z"), shared("no-time", None)]
    assert [r.hub_record_id for r in select(recs, T0, T1, "event")] == ["first", "mid"]


def test_released_basis_uses_the_release_time() -> None:
    late = shared("late", "2026-02-01T00:00:00Z", released=datetime(2026, 3, 3, tzinfo=UTC))
    early = shared("early", "2026-03-03T00:00:00Z", released=datetime(2026, 3, 1, tzinfo=UTC))
    assert [r.hub_record_id for r in select([late, early], T0, T1, "released")] == ["late"]
    assert [r.hub_record_id for r in select([late, early], T0, T1, "event")] == ["early"]


def test_csv_has_one_column_set_whatever_fields_are_released() -> None:
    a = shared("a", "2026-03-02T10:00:00Z", victim="p:1a2b", victim_dob="30-39")
    b = shared("b", "2026-03-03T11:00:00Z", ward=None, tags=["x", "y"])
    rows = list(csv.DictReader(io.StringIO(to_csv([a, b]))))
    assert [r["hub_record_id"] for r in rows] == ["a", "b"]
    assert rows[0]["event_time"] == "2026-03-02T10:00:00+00:00"
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert json.loads(rows[0]["released_fields"])["victim"] == "p:1a2b"
    assert "victim" not in json.loads(rows[1]["released_fields"])
    assert json.loads(rows[1]["released_fields"])["tags"] == ["x", "y"]
    assert rows[0]["area_level"] == "ward"
    assert rows[1]["area_level"] == "district"
    assert rows[1]["ward_code"] == ""
    assert rows[1]["district_code"] == "E07000103"
    assert rows[0]["protocol"] == "police-district@1"


def test_csv_of_nothing_is_just_the_header() -> None:
    assert to_csv([]).splitlines()[0].startswith("hub_record_id,event_time,released_at")
    assert len(to_csv([]).splitlines()) == 1


def test_geojson_places_each_record_at_a_point_inside_its_ward(areas: AreaIndex) -> None:
    recs = [shared("a", "2026-03-02T10:00:00Z"),
            shared("b", "2026-03-02T10:00:00Z", ward="E05004840"),
            shared("c", "2026-03-02T10:00:00Z", ward=None)]
    doc = to_geojson(recs, areas, {"group": "grp-watford"})
    assert doc["type"] == "FeatureCollection"
    assert doc["s115hub"]["group"] == "grp-watford"
    feats = {f["id"]: f for f in doc["features"]}
    for rid, ward in (("a", "E05004838"), ("b", "E05004840")):
        lon, lat = feats[rid]["geometry"]["coordinates"]
        assert areas.wards[ward].geometry.contains(Point(lon, lat))
        assert feats[rid]["properties"]["ward_code"] == ward
    assert feats["c"]["geometry"] is None
    assert feats["c"]["properties"]["district_code"] == "E07000103"
    assert feats["a"]["properties"]["fields"]["occurred_at"] == "2026-03-02T10:00:00Z"
