"""Hypothesis fuzzing of ingest's parsers and of the whole validate-and-seal path (in memory):
whatever a partner sends, nothing crashes, every record is either accepted or rejected, and
every rejection carries a reason. Pure, no broker: a few seconds."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.feeds import FEEDS
from services.core.crypto.fields import DataKeyStore
from services.core.errors import RecordRejected
from services.core.kafka.topics import Topics
from services.core.ops.metrics import ServiceMetrics
from services.ingest.service import IngestService
from services.ingest.validation import Item, load_json, parse_csv, parse_ndjson, validate_record

EXAMPLES = 150
STATS: Counter[str] = Counter()
FIELDS = sorted({n for m in FEEDS.values() for n in m.model_fields} | {"lat", "lon", "junk"})

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(
                        ["2024-05-01T21:30:00Z", "burglary", "dwelling", "asb", "noise",
                         "body-part", "home", "123 456 7890", "51.7", "-0.3"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), inner,
                    max_size=5)), max_leaves=12)
random_records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10)
TS = "2024-05-01T21:30:00Z"
LOC = {"lat": 51.7, "lon": -0.3}
VALID: dict[str, dict[str, Any]] = {
    "police": {"source_id": "p1", "category": "burglary", "occurred_at": TS, "location": LOC,
               "victim_name": "A Person"},
    "fire": {"source_id": "f1", "category": "deliberate-primary-fire",
             "property_type": "dwelling", "occurred_at": TS, "location": LOC},
    "health": {"source_id": "h1", "arrival_at": TS, "assault_at": TS,
               "assault_method": "body-part", "location_type": "home",
               "nhs_number": "123 456 7890"},
    "council": {"source_id": "c1", "report_type": "asb", "category": "noise",
                "reported_at": TS, "location": LOC, "reporter_phone": "01234 567890"},
}


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A valid record of some feed with a few fields dropped or replaced: near misses."""
    rec: dict[str, Any] = dict(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            rec.pop(field, None)
        else:
            rec[field] = draw(json_values)
    return rec


records = st.one_of(mutated_records(), random_records)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nparser fuzz: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send(self, topic: str, *, value: bytes, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> asyncio.Future[Any]:
        for _, v in headers:
            assert isinstance(v, bytes)
        self.sent.append((topic, value))
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def assert_answered(items: list[Item], feed: str) -> None:
    for item in items:
        STATS["records_tried"] += 1
        if item.error is not None:
            assert item.error
            STATS["rejected_with_reason"] += 1
            continue
        problems: list[tuple[str, str]] = []
        try:
            validate_record(feed, item.data)
        except RecordRejected as exc:
            problems = exc.problems or [("", "")]
        if not problems:
            STATS["accepted"] += 1
            continue
        assert all(reason for _, reason in problems), problems
        STATS["rejected_with_reason"] += 1


_STORES: dict[Path, DataKeyStore] = {}


def ingest_all(tmp: Path, feed: str, items: list[Item], kind: str) -> None:
    """The full path: validation, sealing, dead letters. Must answer every item, never raise."""
    pub = Recorder()
    store = _STORES.get(tmp) or _STORES.setdefault(tmp, DataKeyStore(tmp, b"k" * 32))
    svc = IngestService(topics=Topics("s"), publisher=pub, sealer=store,
                        record_id_key=b"r" * 32, metrics=ServiceMetrics("fuzz"))
    out = asyncio.run(svc.ingest("p", feed, items, kind))
    assert len(out.accepted) + len(out.rejected) == len(items)
    assert all(r["errors"] and all(e["reason"] for e in r["errors"]) for r in out.rejected)
    assert len(pub.sent) == len(items)


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@SETTINGS
@given(text=st.text(max_size=400))
def test_given_any_text_as_ndjson_then_every_line_is_answered(text: str) -> None:
    assert_answered(list(parse_ndjson(text)), "police")


@SETTINGS
@given(text=st.text(max_size=400))
def test_given_any_text_as_csv_then_every_row_is_answered(text: str) -> None:
    assert_answered(list(parse_csv(text)), "council")


@SETTINGS
@given(feed=st.sampled_from(sorted(FEEDS)), record=records)
def test_given_any_json_object_then_validation_accepts_or_names_pointer_and_reason(
        feed: str, record: dict[str, Any]) -> None:
    assert_answered([Item(0, data=record)], feed)


@SETTINGS
@given(feed=st.sampled_from(sorted(FEEDS)),
       lines=st.lists(st.one_of(records.map(json.dumps), st.text(max_size=60)), max_size=6),
       garble=st.booleans())
def test_given_mixed_ndjson_batches_then_ingest_answers_every_record(
        tmp_path: Path, feed: str, lines: list[str], garble: bool) -> None:
    text = "\n".join(lines)
    if garble:  # escapes that JSON allows and a seal cannot hold
        text = text.replace("a", "\\ud800", 1).replace("1", "NaN", 1)
    items = list(parse_ndjson(text))
    assert_answered(items, feed)
    ingest_all(tmp_path, feed, items, "index")


@SETTINGS
@given(feed=st.sampled_from(sorted(FEEDS)),
       header=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=8, unique=True),
       rows=st.lists(st.lists(st.one_of(scalars.map(lambda v: "" if v is None else str(v))),
                              max_size=9), max_size=5))
def test_given_csv_batches_then_ingest_answers_every_row_with_its_line(
        tmp_path: Path, feed: str, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    w.writerows(rows)
    items = list(parse_csv(buf.getvalue()))
    assert all(i.position >= 2 for i in items)
    assert_answered(items, feed)
    ingest_all(tmp_path, feed, items, "line")


@SETTINGS
@given(text=st.text(max_size=200))
def test_given_any_text_then_load_json_returns_value_or_reason(text: str) -> None:
    value, error = load_json(text)
    assert (error is None) or (value is None and error.startswith("not valid JSON"))
