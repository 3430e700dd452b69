"""Issue 4 through the whole hub (ingest, depersonalise, router as processes on the session
broker): the same batch sent three times reaches each tasking group once, and records whose data
key was shredded are reported unreadable by depersonalise (metric and dead letter, no plaintext)
while it carries on. Ingest's recent-record window is off here, so all three copies reach the raw
topic and the downstream dedupe by hub record id is what is tested. About 60 s."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from demo.cluster import LocalHub
from demo.synthetic import Generator
from schemas.feeds import FEEDS
from services.cli.main import app as cli
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from services.core.crypto.fields import DataKeyStore
from services.core.crypto.keys import MasterKey
from services.core.kafka.clients import kafka_python_common
from services.ingest.records import RECORD_ID_INFO, build_raw
from tests.conftest import BrokerInfo
from tests.e2e.test_pipeline_routing import expected_groups
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    state = tmp_path_factory.mktemp("herts-ingest")
    h = LocalHub(state, REPO_ROOT / "deploy" / "hertfordshire",
                 bootstrap_servers=kafka_broker.bootstrap,
                 idempotent_producer=kafka_broker.idempotent_producer, log_dir=state / "logs",
                 extra_env={"S115HUB_INGEST_DEDUPE_WINDOW": "0"})
    try:
        h.start(topic_prefix=f"p{uuid.uuid4().hex[:10]}")
    except Exception:
        h.stop()
        for log in sorted((state / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text()[-3000:]}")
        raise
    yield h
    h.stop()


def metric(hub: LocalHub, svc: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{hub.url(svc)}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        ours = line.startswith((name + "{", name + " "))
        if ours and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def deliveries(hub: LocalHub) -> Counter[tuple[str, str]]:
    assert hub.settings is not None
    assert hub.boot is not None
    got: Counter[tuple[str, str]] = Counter()
    for g in hub.boot.county.groups:
        for rec in read_json(hub.settings, f"{hub.settings.topic_prefix}.deliver.{g.id}"):
            got[(g.id, rec["hub_record_id"])] += 1
    return got


def test_given_the_same_batch_three_times_then_each_group_gets_one_copy(hub: LocalHub) -> None:
    assert hub.settings is not None
    assert hub.boot is not None
    s, prefix = hub.settings, hub.settings.topic_prefix
    areas = AreaIndex.load(s.boundaries_dir)
    gen = Generator(areas, seed=4)
    expect: dict[str, set[str]] = {}
    batches: dict[str, tuple[str, str]] = {}
    for feed, n in (("police", 4), ("fire", 3), ("health", 3)):
        recs = []
        partner = ""
        for _ in range(n):
            ward, rec = gen.record(feed)
            partner = gen.partner_for(feed, ward)
            recs.append(rec)
            expect[f"{feed}:{rec['source_id']}"] = expected_groups(
                hub, feed, areas.wards[ward].district_code)
        batches[feed] = (partner, "\n".join(json.dumps(r) for r in recs))
    ids: dict[str, str] = {}
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as c:
        for _ in range(3):
            for feed, (partner, body) in batches.items():
                r = c.post(f"/v1/feeds/{feed}/ndjson", content=body,
                           headers={"X-API-Key": hub.boot.api_keys[partner]})
                assert r.status_code == 200, r.text
                assert r.json()["counts"] == {"accepted": body.count("\n") + 1, "rejected": 0}
                for a in r.json()["accepted"]:
                    ids[f"{feed}:{a['source_id']}"] = a["hub_record_id"]
    want = {(g, ids[k]) for k, groups in expect.items() for g in groups}
    assert want, "the test records should reach some group"
    # All three copies reach the raw topics: the dedupe under test is downstream.
    raw = Counter(r["envelope"]["hub_record_id"] for f in ("police", "fire", "health")
                  for r in read_json(s, f"{prefix}.raw.{f}"))
    assert {raw[i] for i in ids.values()} == {3}
    # Wait until the router has read every shared record there is (duplicates included), so no
    # late copy can still be on its way to a group when we count.
    shared_n = wait_for(lambda: len(read_topic(s, f"{prefix}.shared")),
                        lambda n: n >= 3 * len(ids), timeout=90, what="shared copies")
    wait_for(lambda: metric(hub, "router", "s115hub_router_records_in_total"),
             lambda n: n >= shared_n, timeout=90, what="router to read every shared record")
    got = wait_for(lambda: deliveries(hub), lambda d: want <= set(d), timeout=60,
                   what="deliveries")
    mine = {k: v for k, v in got.items() if k[1] in set(ids.values())}
    assert set(mine) == want
    assert set(mine.values()) == {1}, {k: v for k, v in mine.items() if v != 1}
    assert metric(hub, "router", "s115hub_router_duplicates_skipped_total") >= 1


def test_given_a_shredded_data_key_then_depersonalise_reports_unreadable_and_carries_on(
        hub: LocalHub) -> None:
    assert hub.settings is not None
    assert hub.boot is not None
    s, prefix = hub.settings, hub.settings.topic_prefix
    name = "Ottoline Brackenbury-Vasquez"
    master = MasterKey.from_file(s.resolved_master_key_file())
    store = DataKeyStore(s.state_dir / "datakeys", master.kek())
    yesterday = datetime.now(UTC) - timedelta(days=1)
    record = FEEDS["police"].model_validate({
        "source_id": "shred-1", "category": "burglary", "occurred_at": "2024-05-01T21:30:00Z",
        "location": {"lat": 51.75, "lon": -0.34}, "victim_name": name})
    raw = build_raw(record, partner="herts-police", feed="police",
                    record_id_key=master.derive(RECORD_ID_INFO), sealer=store, now=yesterday)
    before = metric(hub, "depersonalise", "s115hub_depersonalise_records_blocked_total",
                    cause="unreadable")
    # The broker too: the shredding is put on the audit chain (issue 16).
    env = {"S115HUB_STATE_DIR": str(s.state_dir), "S115HUB_TOPIC_PREFIX": prefix,
           "S115HUB_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers}
    today = datetime.now(UTC).date().isoformat()
    out = CliRunner().invoke(cli, ["keys", "shred", "--before", today, "--yes"], env=env)
    assert out.exit_code == 0, out.output
    assert f"dk-{yesterday.date().isoformat()}" in out.output
    producer = KafkaProducer(**kafka_python_common(s), acks="all")
    try:
        producer.send(f"{prefix}.raw.police", raw.model_dump_json().encode(),
                      key=raw.envelope.hub_record_id.encode()).get(timeout=30)
    finally:
        producer.close()
    rid = raw.envelope.hub_record_id
    letters = wait_for(
        lambda: [json.loads(m.value) for m in read_topic(s, f"{prefix}.rejected")
                 if dict(m.headers or ()).get("stage") == b"depersonalise"],
        lambda ls: any(x.get("hub_record_id") == rid for x in ls), timeout=60,
        what="depersonalise's dead letter for the shredded record")
    mine = next(x for x in letters if x["hub_record_id"] == rid)
    assert "shredded" in mine["problems"][0]["reason"]
    assert name not in json.dumps(letters)
    assert "Brackenbury" not in json.dumps(letters)
    assert metric(hub, "depersonalise", "s115hub_depersonalise_records_blocked_total",
                  cause="unreadable") >= before + 1
    # Still running: a record sealed today goes through.
    r = httpx.post(f"{hub.url('ingest')}/v1/feeds/police/records", timeout=30,
                   headers={"X-API-Key": hub.boot.api_keys["herts-police"]},
                   json={"source_id": "after-shred", "category": "burglary",
                         "occurred_at": "2024-05-01T21:30:00Z",
                         "location": {"lat": 51.75, "lon": -0.34}})
    assert r.status_code == 202, r.text
    after = r.json()["hub_record_id"]
    shared = wait_for(lambda: [x["hub_record_id"] for x in read_json(s, f"{prefix}.shared")],
                      lambda got: after in got, timeout=60, what="a record after the shred")
    assert rid not in shared
    # And a record for the shredded day can no longer be sealed by anyone.
    with pytest.raises(Exception, match="shredded"):
        store.seal({"victim_name": name}, "r-late", yesterday.date())


