"""Delivery over HTTP against the real broker: isolation between groups, export content, and the
SSE stream (live, resume with Last-Event-ID, revocation ending an open stream).

The web sub-app runs in-process under uvicorn with a fixed pair of groups; deliveries and alerts
are planted on the groups' own topics as the router and the detector would write them, so these
tests need neither the pipeline nor a detector that happens to fire. The page through the real
router is tested in tests/browser/.

Over 400 lines because one in-process web app serves every delivery-over-HTTP test; splitting would
start it twice.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from shapely.geometry import Point

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.county import Group
from services.core.config.settings import Settings
from services.core.kafka.broker import free_port
from services.core.kafka.clients import ensure_topics, kafka_python_common
from services.core.kafka.topics import topic_specs, topics_for
from services.core.ops.metrics import ServiceMetrics
from services.router.subscriptions import Subscription
from services.router.web import make_web_app
from services.router.web.tokens import group_token_store
from tests.conftest import BrokerInfo
from tests.kafka_read import wait_for

pytestmark = pytest.mark.kafka

WATFORD, DACORUM = "E07000103", "E07000096"
CALLOWLAND, HOLYWELL = "E05004838", "E05004840"


@dataclass
class Source:
    subs: list[Subscription]
    stopping: bool = False
    #: Live protocol ref -> the groups it names (the router's own map).
    live: dict[str, frozenset[str]] | None = None

    def ready(self) -> tuple[bool, str]:
        return (False, "stopping") if self.stopping else (True, "ok")


@dataclass
class Web:
    url: str
    settings: Settings
    areas: AreaIndex
    producer: Any
    source: Source

    def token(self, group: str) -> str:
        return group_token_store(self.settings).issue(group).token

    def put(self, group: str, value: SharedRecord | HotspotAlert) -> None:
        t = topics_for(self.settings)
        if isinstance(value, SharedRecord):
            topic, key = t.deliver(group), value.hub_record_id
        else:
            topic, key = t.hotspots(group), value.alert_id
        self.producer.send(topic, value.model_dump_json().encode(), key=key.encode())
        self.producer.flush()


def _sub(gid: str, district: str) -> Subscription:
    return Subscription.of(Group(id=gid, name=gid, districts=[district], officer="x"))


@pytest.fixture(scope="module")
def web(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    from kafka import KafkaProducer

    settings = Settings(kafka_bootstrap_servers=kafka_broker.bootstrap,
                        kafka_idempotent_producer=kafka_broker.idempotent_producer,
                        topic_prefix=f"w{uuid.uuid4().hex[:10]}",
                        state_dir=tmp_path_factory.mktemp("web-state"))
    ensure_topics(settings, topic_specs(settings, ["grp-a", "grp-b", "grp-w"]))
    # grp-w takes one ward of Watford (as Halton's Widnes and Runcorn groups take wards).
    ward_group = Subscription.of(Group(id="grp-w", name="grp-w", wards=[CALLOWLAND],
                                       protocols=["police-district"], officer="x"))
    source = Source([_sub("grp-a", WATFORD), _sub("grp-b", DACORUM), ward_group],
                    live={"police-district@1": frozenset({"grp-a", "grp-b", "grp-w"})})
    root = FastAPI()
    root.mount("/groups", make_web_app(settings, source, ServiceMetrics("router")))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    producer = KafkaProducer(**kafka_python_common(settings), acks="all")
    try:
        wait_for(lambda: server.started, bool, timeout=20, interval=0.1, what="uvicorn start")
        yield Web(f"http://127.0.0.1:{port}/groups", settings,
                  AreaIndex.load(settings.boundaries_dir), producer, source)
    finally:
        producer.close()
        server.should_exit = True
        thread.join(15)


def record(ward: str | None, occurred: datetime | None, *, district: str = WATFORD,
           released: datetime | None = None, category: str = "burglary") -> SharedRecord:
    fields: dict[str, Any] = {"category": category, "victim": f"p:{uuid.uuid4().hex[:12]}"}
    if occurred is not None:
        fields["occurred_at"] = occurred.isoformat()
    if ward is not None:
        fields["location"] = ward
    return SharedRecord(hub_record_id=f"rec-{uuid.uuid4().hex}", partner="herts-police",
                        feed="police", category=category, ward_code=ward,
                        district_code=district, fields=fields, protocol="police-district@1",
                        released_at=released or datetime.now(UTC).replace(microsecond=0))


def alert(group: str, ward: str) -> HotspotAlert:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    return HotspotAlert(
        alert_id=f"al-{uuid.uuid4().hex[:12]}", group=group, ward_code=ward, ward_name="Ward",
        district_code=WATFORD, category="burglary", window="week", window_start=start,
        window_end=start + timedelta(days=7), count="14", expected=3.2, p_value=1.2e-5,
        bh_threshold=4e-4, gi_z=3.1, neighbours=[HOLYWELL], protocol="police-district@1",
        raised_at=start + timedelta(days=7, minutes=1))


# -- SSE -------------------------------------------------------------------------------------


@dataclass
class Ev:
    event: str
    id: str | None
    data: str


class SseReader:
    """Reads one event stream with a deadline per event (the read timeout)."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str]) -> None:
        self._cm = client.stream("GET", url, headers=headers)
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def next(self) -> Ev:
        event: str = "message"
        eid: str | None = None
        data: list[str] = []
        for line in self._lines:
            if line == "":
                if data:
                    return Ev(event, eid, "\n".join(data))
                event, eid = "message", None  # a comment-only block (keep-alive)
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "id":
                eid = value
            elif name == "data":
                data.append(value)
        raise AssertionError("stream ended")

    def take(self, n: int) -> list[Ev]:
        return [self.next() for _ in range(n)]

    def until(self, hub_record_id: str) -> list[Ev]:
        out = []
        while True:
            ev = self.next()
            out.append(ev)
            if ev.event == "delivery" and json.loads(ev.data)["hub_record_id"] == hub_record_id:
                return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def _key(ev: Ev) -> str:
    doc = json.loads(ev.data)
    return str(doc.get("hub_record_id") or doc.get("alert_id"))


def test_sse_streams_the_groups_deliveries_and_alerts_live_and_resumes_exactly(web: Web) -> None:
    token = web.token("grp-a")
    auth = {"Authorization": f"Bearer {token}"}
    mine = [record(CALLOWLAND, datetime(2026, 3, 3, 10, tzinfo=UTC)) for _ in range(3)]
    theirs = [record(None, datetime(2026, 3, 3, 10, tzinfo=UTC), district=DACORUM)
              for _ in range(2)]
    hot = alert("grp-a", CALLOWLAND)
    for r in mine:
        web.put("grp-a", r)
    for r in theirs:
        web.put("grp-b", r)
    web.put("grp-a", hot)

    with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
        sse = SseReader(client, f"{web.url}/grp-a/stream?from=start", auth)
        try:
            assert sse.response.status_code == 200
            assert sse.response.headers["content-type"].startswith("text/event-stream")
            first = sse.take(4)
            assert {_key(e) for e in first} == {r.hub_record_id for r in mine} | {hot.alert_id}
            assert {e.event for e in first} == {"delivery", "alert"}
            got_alert = next(e for e in first if e.event == "alert")
            assert HotspotAlert.model_validate_json(got_alert.data) == hot
            for e in first:
                if e.event == "delivery":
                    SharedRecord.model_validate_json(e.data)  # the contract, unchanged

            live = [record(HOLYWELL, datetime(2026, 3, 4, tzinfo=UTC)) for _ in range(2)]
            for r in live:
                web.put("grp-a", r)
            more = sse.take(2)
            assert {_key(e) for e in more} == {r.hub_record_id for r in live}
            seen = first + more
        finally:
            sse.close()

        # Resume from the second event: exactly the events after it, none before, no repeats.
        resume_id = seen[1].id
        assert resume_id
        sentinel = record(CALLOWLAND, datetime(2026, 3, 5, tzinfo=UTC))
        sse = SseReader(client, f"{web.url}/grp-a/stream?from=end",
                        {**auth, "Last-Event-ID": resume_id})
        try:
            resumed = sse.take(len(seen) - 2)
            web.put("grp-a", sentinel)
            resumed += sse.until(sentinel.hub_record_id)
        finally:
            sse.close()
        assert sorted(_key(e) for e in resumed[:-1]) == sorted(_key(e) for e in seen[2:])
        assert len({_key(e) for e in resumed}) == len(resumed)
        assert not {_key(e) for e in resumed} & {r.hub_record_id for r in theirs}


def test_alerts_only_stream_and_revocation_ends_an_open_stream(web: Web) -> None:
    issued = group_token_store(web.settings).issue("grp-a")
    auth = {"Authorization": f"Bearer {issued.token}"}
    delivery = record(CALLOWLAND, datetime(2026, 3, 3, tzinfo=UTC))
    web.put("grp-a", delivery)
    hot = alert("grp-a", HOLYWELL)
    web.put("grp-a", hot)
    with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
        sse = SseReader(client, f"{web.url}/grp-a/stream?kinds=alerts&from=start", auth)
        try:
            # Every event is an alert; ours is among them (earlier tests planted others).
            events: list[Ev] = []
            while hot.alert_id not in {_key(e) for e in events}:
                events.append(sse.next())
            assert {e.event for e in events} == {"alert"}
            group_token_store(web.settings).revoke("grp-a", issued.token_id)
            ev = sse.next()
            assert ev.event == "revoked"
            with pytest.raises(AssertionError, match="stream ended"):
                sse.next()
        finally:
            sse.close()
        assert client.get(f"{web.url}/grp-a/stream", headers=auth).status_code == 401


# -- isolation --------------------------------------------------------------------------------


def test_a_groups_token_cannot_read_another_groups_stream_or_export(web: Web) -> None:
    a, b = web.token("grp-a"), web.token("grp-b")
    b_only = record(None, datetime(2026, 3, 3, 12, tzinfo=UTC), district=DACORUM)
    web.put("grp-b", b_only)
    q = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z"
    with httpx.Client(timeout=20.0) as client:
        for route in ("stream?from=start", f"export.csv?{q}", f"export.geojson?{q}",
                      "wards.json", "wards.svg", ""):
            r = client.get(f"{web.url}/grp-b/{route}", headers={"Authorization": f"Bearer {a}"})
            assert r.status_code == 403, (route, r.status_code)
            r = client.get(f"{web.url}/grp-b/{route}",
                           headers={"Authorization": "Bearer s115g_deadbeef_nope"})
            assert r.status_code == 401, (route, r.status_code)
        # B reads its record; A's export of the same range does not contain it.
        got_b = client.get(f"{web.url}/grp-b/export.csv?{q}",
                           headers={"Authorization": f"Bearer {b}"})
        assert got_b.status_code == 200
        assert b_only.hub_record_id in got_b.text
        got_a = client.get(f"{web.url}/grp-a/export.csv?{q}",
                           headers={"Authorization": f"Bearer {a}"})
        assert got_a.status_code == 200
        assert b_only.hub_record_id not in got_a.text
        store = group_token_store(web.settings)
        store.revoke("grp-b")
        r = client.get(f"{web.url}/grp-b/export.csv?{q}", headers={"Authorization": f"Bearer {b}"})
        assert r.status_code == 401


# -- export -----------------------------------------------------------------------------------


def test_export_returns_the_range_as_csv_and_geojson(web: Web) -> None:
    token = web.token("grp-a")
    auth = {"Authorization": f"Bearer {token}"}
    # A range of its own in 2025, so records other tests planted (2026) stay out of it.
    t0, t1 = datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 9, tzinfo=UTC)
    inside = [record(CALLOWLAND, t0), record(HOLYWELL, t0 + timedelta(days=3, hours=5)),
              record(None, t1 - timedelta(hours=1))]
    outside = [record(CALLOWLAND, t0 - timedelta(hours=1)), record(CALLOWLAND, t1),
               record(HOLYWELL, t1 + timedelta(days=2)),
               record(CALLOWLAND, None, released=t0 + timedelta(days=1))]
    for rec in [*inside, *outside]:
        web.put("grp-a", rec)
    web.put("grp-a", inside[0])  # a redelivery: exported once

    q = {"from": t0.isoformat(), "to": t1.isoformat()}
    want = {r.hub_record_id: r for r in inside}
    with httpx.Client(timeout=30.0) as client:
        r = client.get(f"{web.url}/grp-a/export.csv", params=q, headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted(row["hub_record_id"] for row in rows) == sorted(want)
        for row in rows:
            rec = want[row["hub_record_id"]]
            assert row["ward_code"] == (rec.ward_code or "")
            assert json.loads(row["released_fields"])["victim"] == rec.fields["victim"]
            assert datetime.fromisoformat(row["event_time"]) == \
                datetime.fromisoformat(rec.fields["occurred_at"])

        r = client.get(f"{web.url}/grp-a/export.geojson", params=q, headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/geo+json")
        doc = r.json()
        assert doc["type"] == "FeatureCollection"
        feats = {f["id"]: f for f in doc["features"]}
        assert sorted(feats) == sorted(want)
        for rid, f in feats.items():
            rec = want[rid]
            if rec.ward_code is None:
                assert f["geometry"] is None
            else:
                lon, lat = f["geometry"]["coordinates"]
                assert web.areas.wards[rec.ward_code].geometry.contains(Point(lon, lat))
            assert f["properties"]["fields"] == rec.fields

        # By release time, the record without an event time is in and the rest follow their
        # release stamps (now), which lie outside 2025.
        r = client.get(f"{web.url}/grp-a/export.csv", params={**q, "by": "released"},
                       headers=auth)
        assert [row["hub_record_id"] for row in csv.DictReader(io.StringIO(r.text))] == \
            [outside[-1].hub_record_id]


def test_ward_counts_follow_the_groups_deliveries(web: Web) -> None:
    token = web.token("grp-a")
    auth = {"Authorization": f"Bearer {token}"}
    # This week is later than every other event time planted in this module (2025, March
    # 2026), so the tally's current week is this one and holds only these records.
    now = datetime.now(UTC)
    for _ in range(12):
        web.put("grp-a", record(CALLOWLAND, now - timedelta(minutes=1)))
    web.put("grp-a", record(HOLYWELL, now - timedelta(minutes=1)))
    for _ in range(2):  # generalised to the district (no ward): counted apart
        web.put("grp-a", record(None, now - timedelta(minutes=1)))

    def probe() -> dict[str, Any]:
        doc = httpx.get(f"{web.url}/grp-a/wards.json", headers=auth, timeout=20).json()
        return {w["ward_code"]: w for w in doc["wards"]} | {"_doc": doc}

    got = wait_for(probe, lambda d: d[CALLOWLAND]["count"] == "12", timeout=30,
                   what="Callowland's count to reach 12")
    assert got[HOLYWELL]["count"] == "<10"
    assert got["_doc"]["district_only"] == 2  # the true count, and as the page shows it:
    assert got["_doc"]["district_only_shown"] == "<10"
    assert all(got[c]["count"] == "0" for c in got if c not in {"_doc", CALLOWLAND, HOLYWELL})
    assert len(got) - 1 == 12  # Watford's twelve wards, no others
    start = datetime.fromisoformat(got["_doc"]["window_start"])
    assert start <= now < start + timedelta(days=7)


def test_open_streams_end_when_the_router_stops_being_ready(web: Web) -> None:
    """A stopping router is not ready; its streams must end, or uvicorn's graceful shutdown
    would wait on them for ever."""
    auth = {"Authorization": f"Bearer {web.token('grp-a')}"}
    with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
        sse = SseReader(client, f"{web.url}/grp-a/stream?kinds=alerts&from=end", auth)
        try:
            assert sse.response.status_code == 200
            web.source.stopping = True
            ev = sse.next()
            assert ev.event == "closing"
            assert json.loads(ev.data)["detail"] == "stopping"
            with pytest.raises(AssertionError, match="stream ended"):
                sse.next()
        finally:
            web.source.stopping = False
            sse.close()


def test_a_ward_group_is_told_how_many_district_only_records_its_district_had(web: Web) -> None:
    """District-only records go to the district's group, not to a group of single wards (the
    hub does not know their ward); that group's wards.json and summary.json count them."""
    auth = {"Authorization": f"Bearer {web.token('grp-w')}"}
    now = datetime.now(UTC)
    shared_topic = topics_for(web.settings).shared
    planted = [record(None, now - timedelta(minutes=1)) for _ in range(3)]
    planted.append(record(None, now - timedelta(minutes=1), district=DACORUM))  # not its district
    later = record(None, now - timedelta(minutes=1))
    planted.append(later)
    # ... released again with its ward (late ward release): no longer district-only.
    planted.append(later.model_copy(update={"ward_code": HOLYWELL}))
    for rec in planted:
        web.producer.send(shared_topic, rec.model_dump_json().encode(),
                          key=rec.hub_record_id.encode())
    web.producer.flush()

    def probe() -> dict[str, Any]:
        return httpx.get(f"{web.url}/grp-w/wards.json", headers=auth, timeout=20).json()

    doc = wait_for(probe, lambda d: d["district_only_not_received"] == 3, timeout=30,
                   what="grp-w to be told of three district-only records")
    assert doc["district_only_not_received_shown"] == "<10"
    assert doc["district_only"] == 0  # it received none itself
    summary = httpx.get(f"{web.url}/grp-w/summary.json", headers=auth, timeout=20).json()
    assert summary["district_only_not_received"] == 3
    assert summary["district_only_not_received_shown"] == "<10"
    # A district group receives those records themselves and is told nothing more.
    a = {"Authorization": f"Bearer {web.token('grp-a')}"}
    assert httpx.get(f"{web.url}/grp-a/wards.json", headers=a,
                     timeout=20).json()["district_only_not_received"] == 0
