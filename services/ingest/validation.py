"""Turn what a partner sent into feed records or precise rejections. Pure: no Kafka, no HTTP.

Every rejection names the record (index or CSV line), the field (a JSON pointer) and the reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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


@dataclass(frozen=True)
class TimeWindow:
    """When an event can plausibly have happened, as ingest sees it now: not after ``now`` plus
    the clock skew allowed between partner systems and the hub, and not before ``floor``."""

    now: datetime
    max_future: timedelta = timedelta(minutes=5)
    floor: date = date(2000, 1, 1)

    def problem(self, value: datetime) -> str | None:
        if value > self.now + self.max_future:
            return (f"{value.isoformat()} is in the future (more than "
                    f"{self.max_future.total_seconds():g} s after the hub's clock, "
                    f"{self.now.isoformat(timespec='seconds')})")
        floor = datetime(self.floor.year, self.floor.month, self.floor.day, tzinfo=UTC)
        if value < floor:
            return (f"{value.isoformat()} is before {self.floor.isoformat()}, the earliest "
                    "plausible event time")
        return None


def validate_record(feed: str, data: Any, window: TimeWindow | None = None) -> FeedModel:
    """Validate one record of ``feed``; raise RecordRejected listing every bad field. With a
    ``window``, every date-time field must also fall inside it."""
    model = FEEDS.get(feed)
    if model is None:
        raise RecordRejected([("", f"unknown feed {feed!r}; known: {', '.join(FEEDS)}")])
    if not isinstance(data, dict):
        raise RecordRejected([("", f"a record must be a JSON object, not {type(data).__name__}")])
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        raise RecordRejected(problems_of(exc)) from None
    if window is not None:
        problems = [(pointer((name,)), why) for name in model.model_fields
                    if isinstance(value := getattr(record, name), datetime)
                    and (why := window.problem(value)) is not None]
        if problems:
            raise RecordRejected(problems)
    return record


@dataclass
class Item:
    """One record of a batch: ``position`` is the NDJSON index (0-based) or the CSV line (1-based,
    header is line 1), ``data`` the parsed object, or ``error`` when it could not be parsed."""

    position: int
    data: Any = None
    error: str | None = None
    raw: str | None = None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    # 1e999999 parses to infinity, which no JSON encoder writes back: the record could be neither
    # sealed nor published, so it is refused here with a reason rather than failing later.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a JSON number")
    return value


def _bad_json(message: str) -> str:
    return f"not valid JSON: {message}"


def load_json(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, reason). Stricter than ``json.loads``: NaN and Infinity, unpaired
    surrogate escapes and absurd nesting are refused, since none can be sealed or published."""
    try:
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite)
    except json.JSONDecodeError as exc:
        return None, _bad_json(f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except ValueError as exc:
        return None, _bad_json(str(exc))
    except RecursionError:
        return None, _bad_json("nested too deeply")
    if "\\u" in text or "\\U" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return None, _bad_json("a string holds an unpaired UTF-16 surrogate escape")
        except RecursionError:
            return None, _bad_json("nested too deeply")
    return value, None


def parse_ndjson(text: str) -> Iterator[Item]:
    """One record per line; blank lines are skipped and do not count towards the index.

    Lines are split on LF only (CRLF tolerated): JSON strings may hold U+2028 and friends, which
    ``str.splitlines`` would treat as line breaks.
    """
    index = 0
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        data, error = load_json(line)
        yield Item(index, data=data, error=error, raw=line if error else None)
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
    """Records with their line numbers (header is line 1; a record whose quoted cell spans lines
    is numbered by its last line). A syntax error ends the batch: the reader cannot find the
    next record boundary reliably after one."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                yield Item(line, error=f"line {line} has more cells than the header")
                continue
            yield Item(line, data=row_to_record(row))
    except csv.Error as exc:
        line = reader.line_num
        yield Item(line, error=f"CSV syntax error on line {line}: {exc}; "
                               "the rest of the file was not read")
