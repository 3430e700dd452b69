"""Deliveries as a tasking group downloads them: event time, time-range selection, CSV and
GeoJSON. Pure: no broker, no web framework.

GeoJSON geometry is the ward's representative point (always inside the ward), not the ward
polygon: the record's own location was generalised to the ward before it left depersonalise, so
the point says nothing finer than the ward code does, and one point per feature keeps an export of
thousands of records small where repeating a polygon per record would not. A record without a
ward gets a null geometry (allowed by RFC 7946) and keeps its district in the properties.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Literal

from schemas.event_time import as_utc, event_time
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex

TimeBasis = Literal["event", "released"]

#: The one column set every group's CSV has, whatever its protocols release (docs/api.md):
#: ``area_level`` says whether the record was placed in its ward or only its district;
#: ``released_fields`` is every field the protocol released, as one compact JSON object, so the
#: columns never depend on which feeds a group receives.
CSV_COLUMNS = ("hub_record_id", "event_time", "released_at", "feed", "partner", "category",
               "ward_code", "ward_name", "district_code", "district_name", "area_level",
               "protocol", "key_epoch", "released_fields")


def record_time(rec: SharedRecord, basis: TimeBasis) -> datetime | None:
    """When the record left the hub, or when the incident happened as the protocol released it
    (often coarsened to the hour; schemas/event_time.py)."""
    if basis == "released":
        return as_utc(rec.released_at)
    t = event_time(rec.feed, rec.fields)
    return t.when if t else None


def select(records: Iterable[SharedRecord], start: datetime, end: datetime,
           basis: TimeBasis) -> Iterator[SharedRecord]:
    """Records whose time lies in [start, end), first copy of each hub record id only.

    Under ``event`` a record whose protocol released no event time is left out: it cannot be
    placed in the range, and guessing from the release time would mix two clocks in one column.
    """
    start, end = as_utc(start), as_utc(end)
    seen: set[str] = set()
    for rec in records:
        t = record_time(rec, basis)
        if t is None or not start <= t < end or rec.hub_record_id in seen:
            continue
        seen.add(rec.hub_record_id)
        yield rec


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _flat(rec: SharedRecord) -> dict[str, Any]:
    t = record_time(rec, "event")
    return {
        "hub_record_id": rec.hub_record_id,
        "event_time": t.isoformat() if t else None,
        "released_at": as_utc(rec.released_at).isoformat(),
        "feed": rec.feed, "partner": rec.partner, "category": rec.category,
        "ward_code": rec.ward_code, "ward_name": rec.ward_name,
        "district_code": rec.district_code, "district_name": rec.district_name,
        "area_level": "ward" if rec.ward_code else "district" if (
            rec.district_code or rec.district_name) else "none",
        "protocol": rec.protocol, "key_epoch": rec.key_epoch,
    }


def to_csv(records: Iterable[SharedRecord]) -> str:
    """One row per record, ``CSV_COLUMNS`` for every group; structured values as compact JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for rec in records:
        flat = {**_flat(rec), "released_fields": rec.fields}
        writer.writerow([_cell(flat[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def to_geojson(records: Iterable[SharedRecord], areas: AreaIndex,
               meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    features = []
    for rec in records:
        ward = areas.wards.get(rec.ward_code) if rec.ward_code else None
        geometry = ({"type": "Point", "coordinates": [ward.point[1], ward.point[0]]}
                    if ward else None)
        features.append({"type": "Feature", "id": rec.hub_record_id, "geometry": geometry,
                         "properties": {**_flat(rec), "fields": rec.fields}})
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if meta:
        doc["s115hub"] = dict(meta)
    return doc
