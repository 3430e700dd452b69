"""IngestService with an in-memory publisher: what is written where, and when nothing is.

The publisher stands in for the producer only to observe the service's own decisions; the same
paths run against the real broker in tests/e2e/test_ingest_*.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from services.core.crypto.fields import DataKeyStore
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.topics import Topics
from services.core.ops.metrics import ServiceMetrics
from services.ingest.service import IngestService
from services.ingest.validation import Item

NAME = "Zebedee Quixote-Marlowe"
GOOD = {"source_id": "P1", "category": "burglary", "occurred_at": "2024-05-01T21:30:00Z",
        "victim_name": NAME, "location": {"lat": 51.75, "lon": -0.34}}


class Recorder:
    def __init__(self, fail: Exception | None = None, hang: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []
        self.fail = fail
        self.hang = hang

    async def send(self, topic: str, *, value: bytes, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail is not None:
            fut.set_exception(self.fail)
        elif not self.hang:
            self.sent.append((topic, value, key, headers))
            fut.set_result(None)
        return fut


def service(tmp_path: Path, pub: Recorder, **kw: Any) -> IngestService:
    return IngestService(topics=Topics("s115"), publisher=pub,
                         sealer=DataKeyStore(tmp_path, b"k" * 32), record_id_key=b"r" * 32,
                         metrics=ServiceMetrics("ingest"), **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_given_good_record_then_raw_has_personal_fields_sealed(tmp_path: Path) -> None:
    pub = Recorder()
    out = run(service(tmp_path, pub).ingest("herts-police", "police", [Item(0, data=GOOD)]))
    assert out.rejected == []
    assert len(out.accepted) == 1
    topic, value, key, _ = pub.sent[0]
    raw = json.loads(value)
    assert topic == "s115.raw.police"
    assert key == out.accepted[0]["hub_record_id"].encode()
    assert raw["fields"] == {"source_id": "P1", "category": "burglary",
                             "occurred_at": "2024-05-01T21:30:00Z", "time_precision": "minute"}
    assert NAME not in value.decode()
    assert "51.75" not in value.decode()
    assert raw["sealed"]["key_id"].startswith("dk-")


def test_given_bad_record_with_personal_data_then_dead_letter_has_context_not_plaintext(
        tmp_path: Path) -> None:
    pub = Recorder()
    bad = {**GOOD, "category": NAME, NAME: "an unknown field named after a person"}
    out = run(service(tmp_path, pub).ingest("herts-police", "police",
                                            [Item(7, data=bad)], "line"))
    assert out.accepted == []
    # The partner is told the exact pointers ...
    assert {e["pointer"] for e in out.rejected[0]["errors"]} == {"/category", f"/{NAME}"}
    topic, value, _, headers = pub.sent[0]
    h = dict(headers)
    assert topic == "s115.rejected"
    assert (h["partner"], h["feed"], h["line"]) == (b"herts-police", b"police", b"7")
    assert b"/category" in h["reason"]
    # ... the topic masks the partner-typed key and keeps no personal value in clear.
    text = value.decode() + repr(headers)
    assert NAME not in text
    assert "Quixote" not in text
    letter = json.loads(value)
    assert {p["pointer"] for p in letter["problems"]} == {"/category", "/(unknown-field)"}
    assert letter["line"] == 7
    assert letter["rejection_id"] == out.rejected[0]["rejection_id"]


def test_given_mixed_batch_then_good_records_go_through(tmp_path: Path) -> None:
    pub = Recorder()
    items = [Item(0, data=GOOD), Item(1, error="not valid JSON: x"),
             Item(2, data={**GOOD, "source_id": "P2"})]
    out = run(service(tmp_path, pub).ingest("herts-police", "police", items))
    assert [a["index"] for a in out.accepted] == [0, 2]
    assert [r["index"] for r in out.rejected] == [1]
    assert sorted(t for t, *_ in pub.sent) == ["s115.raw.police", "s115.raw.police",
                                               "s115.rejected"]


def test_given_same_source_id_then_same_hub_record_id(tmp_path: Path) -> None:
    svc = service(tmp_path, Recorder())
    a = run(svc.ingest("herts-police", "police", [Item(0, data=GOOD)])).accepted[0]
    b = run(svc.ingest("herts-police", "police", [Item(0, data={**GOOD, "category": "drugs"})]))
    c = run(svc.ingest("herts-fire", "police", [Item(0, data=GOOD)])).accepted[0]
    assert a["hub_record_id"] == b.accepted[0]["hub_record_id"] != c["hub_record_id"]


def test_given_dedupe_window_then_identical_resend_is_not_written_but_correction_is(
        tmp_path: Path) -> None:
    pub = Recorder()
    svc = service(tmp_path, pub, dedupe_window=10)
    for _ in range(3):
        run(svc.ingest("herts-police", "police", [Item(0, data=GOOD)]))
    assert len(pub.sent) == 1
    out = run(svc.ingest("herts-police", "police", [Item(0, data={**GOOD, "category": "drugs"})]))
    assert len(pub.sent) == 2
    assert not out.accepted[0].get("duplicate")


def test_given_broker_error_then_nothing_is_acknowledged_or_remembered(tmp_path: Path) -> None:
    svc = service(tmp_path, Recorder(fail=RuntimeError("KafkaTimeoutError")), dedupe_window=10)
    with pytest.raises(BrokerUnavailable, match="did not acknowledge"):
        run(svc.ingest("herts-police", "police", [Item(0, data=GOOD)]))
    pub = Recorder()
    svc.publisher = pub
    run(svc.ingest("herts-police", "police", [Item(0, data=GOOD)]))
    assert len(pub.sent) == 1  # the failed attempt did not enter the dedupe window


def test_given_broker_never_answers_then_broker_unavailable_after_timeout(tmp_path: Path) -> None:
    svc = service(tmp_path, Recorder(hang=True), ack_timeout_s=0.2)
    with pytest.raises(BrokerUnavailable, match=r"within 0\.2s"):
        run(svc.ingest("herts-police", "police", [Item(0, data=GOOD)]))


def test_given_a_batch_of_empty_records_then_its_answer_stays_within_the_byte_budget(
        tmp_path: Path) -> None:
    """Issue 12: thousands of empty records must not build a megabyte answer (which the
    Idempotency-Key cache might then keep); every record is still rejected and dead-lettered."""
    pub = Recorder()
    items = [Item(i, data={}) for i in range(2000)]
    out = run(service(tmp_path, pub, rejection_bytes=20_000).ingest("herts-police", "police",
                                                                     items))
    assert len(out.rejected) == 2000
    assert len(pub.sent) == 2000
    assert out.rejected[0]["errors"]
    assert not out.rejected[-1]["errors"]
    assert len(json.dumps(out.as_dict())) < 20_000 + 2000 * 80


def test_given_runs_handed_over_then_none_waits_for_the_broker_until_all_are_acknowledged(
        tmp_path: Path) -> None:
    """The Kafka intake hands every run of a polled batch to the producer, then waits once
    (issue 12: a wait per run was a broker round trip per inbound partition). Nothing counts as
    accepted, or is remembered for dedupe, before the broker has it."""

    class Held(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.futures: list[asyncio.Future[Any]] = []

        async def send(self, topic: str, *, value: bytes, key: bytes | None,
                       headers: list[tuple[str, bytes]]) -> asyncio.Future[Any]:
            self.sent.append((topic, value, key, headers))
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.futures.append(fut)
            return fut

    async def go() -> tuple[int, int, bool, float, float]:
        pub = Held()
        svc = service(tmp_path, pub, dedupe_window=100)
        a = await svc.hand_over("herts-police", "police", [Item(0, data=GOOD)])
        b = await svc.hand_over("herts-police", "police",
                                [Item(1, data={**GOOD, "source_id": "P2"})])
        handed, unacked = len(pub.sent), sum(not f.done() for f in pub.futures)
        counted_early = svc.m_in.labels("herts-police", "police")._value.get()
        waiting = asyncio.create_task(svc.acknowledged([a, b]))
        await asyncio.sleep(0)
        early = waiting.done()
        for f in pub.futures:
            f.set_result(None)
        await waiting
        return handed, unacked, early, counted_early, svc.m_in.labels(
            "herts-police", "police")._value.get()

    handed, unacked, early, counted_early, counted = asyncio.run(go())
    assert (handed, unacked) == (2, 2)  # both runs with the producer, neither acknowledged
    assert not early  # acknowledged() waits for the broker
    assert (counted_early, counted) == (0, 2)


def test_given_one_run_not_acknowledged_then_the_whole_batch_is_broker_unavailable(
        tmp_path: Path) -> None:
    async def go() -> None:
        ok = service(tmp_path, Recorder())
        bad = service(tmp_path, Recorder(fail=ConnectionError("gone")))
        a = await ok.hand_over("herts-police", "police", [Item(0, data=GOOD)])
        b = await bad.hand_over("herts-police", "police", [Item(1, data=GOOD)])
        await ok.acknowledged([a, b])

    with pytest.raises(BrokerUnavailable, match="did not acknowledge"):
        asyncio.run(go())
