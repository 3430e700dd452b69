"""Turn what a partner sent into feed records or precise rejections. Pure: no Kafka, no HTTP.

Every rejection names the record (index or CSV line), the field (a JSON pointer) and the reason.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.base import FeedModel
from schemas.feeds import FEEDS
from services.core.errors import RecordRejected

Problem = tuple[str, str]


def pointer(loc: tuple[Any, ...]) -> str:
    """RFC 6901 JSON pointer for a pydantic error location."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def problems_of(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        out.append((pointer(loc), err["msg"]))
    return out


def validate_record(feed: str, data: Any) -> FeedModel:
    """Validate one record of ``feed``; raise RecordRejected listing every bad field."""
    model = FEEDS.get(feed)
    if model is None:
        raise RecordRejected([("", f"unknown feed {feed!r}; known: {', '.join(FEEDS)}")])
    if not isinstance(data, dict):
        raise RecordRejected([("", f"a record must be a JSON object, not {type(data).__name__}")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RecordRejected(problems_of(exc)) from None


@dataclass
class Item:
    """One record of a batch: ``position`` is the NDJSON index (0-based) or the CSV line (1-based,
    header is line 1), ``data`` the parsed object, or ``error`` when it could not be parsed."""

    position: int
    data: Any = None
    error: str | None = None
    raw: str | None = None


def parse_ndjson(text: str) -> Iterator[Item]:
    index = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield Item(index, data=json.loads(line))
        except json.JSONDecodeError as exc:
            yield Item(index, error=f"not valid JSON: {exc.msg} at column {exc.colno}", raw=line)
        index += 1


_LOCATION_COLUMNS = ("lat", "lon")


def row_to_record(row: dict[str, str | None]) -> dict[str, Any]:
    """CSV has no nesting or nulls: empty cells are absent, ``lat``/``lon`` become ``location``."""
    rec: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
    lat, lon = rec.pop("lat", None), rec.pop("lon", None)
    if lat is not None or lon is not None:
        rec["location"] = {"lat": lat, "lon": lon}
    return rec


def parse_csv(text: str) -> Iterator[Item]:
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        line = reader.line_num
        if None in row:
            yield Item(line, error=f"line {line} has more cells than the header", raw=None)
            continue
        yield Item(line, data=row_to_record(row))
