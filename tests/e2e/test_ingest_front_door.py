"""Issue 4 on a real broker: ingest in-process (lifespan and all) in front of the session broker.

Auth, per-feed rejections with pointers and CSV lines, dead letters with their headers, the
plaintext scan of s115.rejected and s115.raw.*, Idempotency-Key, limits, Kafka inbound topics
and ``s115hub dlq``. Runs in about 30 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from typer.testing import CliRunner

from services.cli.main import app as cli
from services.core.config.settings import Settings
from services.core.kafka.clients import kafka_python_common
from tests.conftest import BrokerInfo
from tests.e2e.ingest_support import Ingest, hub_settings, police_record, running_ingest
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka]
FEEDS = ("police", "fire", "health", "council")
PARTNER = {"police": "herts-police", "fire": "herts-fire", "health": "enherts-nhs",
           "council": "watford-bc"}
LOC = {"lat": 51.66, "lon": -0.40}
TS = "2024-05-01T21:30:00Z"


def good(feed: str, sid: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, dict[str, Any]] = {
        "police": {"category": "burglary", "occurred_at": TS, "location": LOC},
        "fire": {"category": "deliberate-secondary-fire", "property_type": "refuse",
                 "occurred_at": TS, "location": LOC},
        "health": {"arrival_at": TS, "assault_at": TS, "assault_method": "body-part",
                   "location_type": "public-place"},
        "council": {"report_type": "asb", "category": "noise", "reported_at": TS,
                    "location": LOC},
    }
    return {"source_id": sid, **base[feed], **extra}


#: One bad field per feed and the pointer it must be reported at.
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "police": ({"category": "jaywalking"}, "/category"),
    "fire": ({"location": {"lat": 51.66, "lon": 40.0}}, "/location/lon"),
    "health": ({"assault_method": "harsh-words"}, "/assault_method"),
    "council": ({"reported_at": "last tuesday"}, "/reported_at"),
}


@pytest.fixture(scope="module")
def ingest(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Ingest]:
    settings, boot = hub_settings(kafka_broker.bootstrap, kafka_broker.idempotent_producer,
                                  tmp_path_factory.mktemp("ingest"), max_body_bytes=100_000,
                                  max_batch_records=50, ingest_rate_per_partner=1000,
                                  ingest_rate_burst=1000)
    with running_ingest(settings, boot) as ing:
        yield ing


def cli_env(s: Settings) -> dict[str, str]:
    return {"S115HUB_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
            "S115HUB_KAFKA_IDEMPOTENT_PRODUCER": str(s.kafka_idempotent_producer),
            "S115HUB_STATE_DIR": str(s.state_dir), "S115HUB_TOPIC_PREFIX": s.topic_prefix}


def raw_source_ids(s: Settings) -> list[str]:
    return [r["envelope"]["source_id"] for f in FEEDS
            for r in read_json(s, f"{s.topic_prefix}.raw.{f}")]


def letters(s: Settings) -> list[tuple[dict[str, Any], dict[str, str]]]:
    return [(json.loads(m.value), {k: v.decode() for k, v in m.headers or ()})
            for m in read_topic(s, f"{s.topic_prefix}.rejected")]


# -- authentication and authorisation ----------------------------------------------------------

def test_given_wrong_revoked_or_foreign_credentials_then_401_403_and_nothing_written(
        ingest: Ingest) -> None:
    c, s = ingest.client, ingest.settings
    url = "/v1/feeds/police/records"
    r = c.post(url, json=good("police", "auth-wrong"),
               headers={"X-API-Key": ingest.boot.api_keys["herts-police"][:-2] + "xx"})
    assert r.status_code == 401, r.text
    assert r.headers["WWW-Authenticate"] == "ApiKey"
    assert c.post(url, json=good("police", "auth-none")).status_code == 401
    # Another partner's feed: the fire service may not publish police records.
    r = c.post(url, json=good("police", "auth-foreign"), headers=ingest.key("herts-fire"))
    assert r.status_code == 403, r.text
    assert "may not publish to feed 'police'" in r.json()["detail"]
    # Revocation reaches the running ingest: a key issued and revoked by the CLI while ingest
    # runs is accepted, then refused; the partner's other key still works.
    added = CliRunner().invoke(cli, ["partner", "add", "herts-fire"], env=cli_env(s))
    assert added.exit_code == 0, added.output
    key_id, api_key = added.output.split()[3].rstrip(":"), added.output.split()[-1]
    fire = "/v1/feeds/fire/records"
    assert c.post(fire, json=good("fire", "auth-before-revoke"),
                  headers={"X-API-Key": api_key}).status_code == 202
    out = CliRunner().invoke(cli, ["partner", "revoke", "herts-fire", "--key-id", key_id],
                             env=cli_env(s))
    assert out.exit_code == 0, out.output
    r = c.post(fire, json=good("fire", "auth-revoked"), headers={"X-API-Key": api_key})
    assert r.status_code == 401, r.text
    assert c.post(fire, json=good("fire", "auth-other-key"),
                  headers=ingest.key("herts-fire")).status_code == 202
    # A write that was allowed is visible, so the scan would see the denied ones had they landed.
    wait_for(lambda: raw_source_ids(s), lambda ids: "auth-before-revoke" in ids, timeout=30,
             what="the allowed record on the raw topic")
    written = set(raw_source_ids(s))
    denied = {"auth-wrong", "auth-none", "auth-foreign", "auth-revoked"}
    assert not denied & written
    rejected_text = json.dumps([m for m, _ in letters(s)])
    assert not [d for d in denied if d in rejected_text]


# -- rejections ----------------------------------------------------------------------------------

@pytest.mark.parametrize("feed", FEEDS)
def test_given_one_bad_record_per_feed_then_422_names_pointer_and_dead_letter_has_headers(
        ingest: Ingest, feed: str) -> None:
    change, ptr = BAD[feed]
    r = ingest.client.post(f"/v1/feeds/{feed}/records", json=good(feed, f"bad-{feed}", **change),
                           headers=ingest.key(PARTNER[feed]))
    assert r.status_code == 422, r.text
    body = r.json()
    assert [e["pointer"] for e in body["errors"]] == [ptr]
    assert body["errors"][0]["reason"]
    rid = body["rejection_id"]
    found = wait_for(lambda: [x for x in letters(ingest.settings) if x[0]["rejection_id"] == rid],
                     bool, timeout=30, what=f"dead letter {rid}")
    letter, headers = found[0]
    assert headers["partner"] == PARTNER[feed]
    assert headers["feed"] == feed
    assert headers["index"] == "0"
    assert ptr in headers["reason"]
    assert letter["problems"][0]["pointer"] == ptr


def test_given_mixed_ndjson_batch_then_per_record_results_and_good_ones_through(
        ingest: Ingest) -> None:
    lines = [json.dumps(good("council", "nd-0")), "{not json",
             json.dumps(good("council", "nd-2", category="karaoke")),
             json.dumps(good("council", "nd-3"))]
    r = ingest.client.post("/v1/feeds/council/ndjson", content="\n".join(lines),
                           headers=ingest.key("watford-bc"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [a["index"] for a in out["accepted"]] == [0, 3]
    assert [(x["index"], [e["pointer"] for e in x["errors"]]) for x in out["rejected"]] == [
        (1, [""]), (2, ["/category"])]
    assert out["rejected"][0]["errors"][0]["reason"].startswith("not valid JSON")
    # The partner's own reference comes back where the record had a usable one.
    assert [x.get("source_id") for x in out["rejected"]] == [None, "nd-2"]
    wait_for(lambda: raw_source_ids(ingest.settings),
             lambda ids: {"nd-0", "nd-3"} <= set(ids), timeout=30, what="good NDJSON records")


def test_given_csv_batch_then_results_carry_line_numbers(ingest: Ingest) -> None:
    text = ("source_id,category,property_type,occurred_at,lat,lon\n"
            f"csv-2,deliberate-primary-fire,dwelling,{TS},51.7,-0.3\n"
            f"csv-3,deliberate-primary-fire,igloo,{TS},51.7,-0.3\n"
            "\n"
            f"csv-5,deliberate-primary-fire,dwelling,{TS},51.7,\n"
            f"csv-6,deliberate-primary-fire,dwelling,{TS},51.7,-0.3,surplus\n"
            f"csv-7,deliberate-primary-fire,vehicle,{TS},51.8,-0.2\n")
    r = ingest.client.post("/v1/feeds/fire/csv", content=text, headers=ingest.key("herts-fire"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert [a["line"] for a in out["accepted"]] == [2, 7]
    assert {x["line"]: [e["pointer"] for e in x["errors"]] for x in out["rejected"]} == {
        3: ["/property_type"], 5: ["/location/lon"], 6: [""]}
    lines = wait_for(lambda: [h.get("line") for m, h in letters(ingest.settings)
                              if m.get("partner") == "herts-fire" and "line" in h],
                     lambda got: {"3", "5", "6"} <= set(got), timeout=30, what="CSV dead letters")
    assert {"3", "5", "6"} <= set(lines)


# -- no plaintext on s115.rejected or s115.raw.* --------------------------------------------------

PLANTED = ["Xanthippe Ogunbanjo-Frobisher", "Ogunbanjo", "943 476 5919", "07700 900461",
           "xanthippe@example.org", "14 Quillwort Mews", "SG1 9ZZ", "1987-03-14"]


def test_given_planted_identifiers_in_good_and_bad_input_then_none_appear_in_clear(
        ingest: Ingest) -> None:
    c, s = ingest.client, ingest.settings
    name, _, nhs, phone, email, addr, pc, dob = PLANTED
    pol = ingest.key("herts-police")
    sent = [
        c.post("/v1/feeds/police/records", headers=pol, json=good(
            "police", "leak-1", victim_name=name, victim_dob=dob, address=addr,
            summary=f"{name} at {addr}")),
        c.post("/v1/feeds/police/records", headers=pol, json=good(
            "police", "leak-2", category=name, victim_dob="not a date", address=addr)),
        c.post("/v1/feeds/police/records", headers=pol,
               json={**good("police", "leak-3"), name: phone, "note": email}),
        c.post("/v1/feeds/police/ndjson", headers=pol,
               content=f'{{"source_id": "leak-4", "victim_name": "{name}", oops\n'),
        c.post("/v1/feeds/health/records", headers=ingest.key("enherts-nhs"), json=good(
            "health", "leak-5", patient_name=name, nhs_number=nhs, patient_postcode=pc,
            notes=f"{name} {phone}")),
        c.post("/v1/feeds/health/records", headers=ingest.key("enherts-nhs"), json=good(
            "health", "leak-6", nhs_number=f"{nhs} x", patient_postcode=pc, assault_method=email)),
        c.post("/v1/feeds/council/csv", headers=ingest.key("watford-bc"),
               content="source_id,report_type,category,reported_at,lat,lon,reporter_name,"
                       "reporter_phone\n"
                       f"leak-7,asb,noise,{TS},51.66,-0.4,{name},{phone}\n"
                       f"leak-8,asb,{email},{TS},51.66,-0.4,{name},{phone}\n"),
    ]
    assert [r.status_code for r in sent] == [202, 422, 422, 200, 202, 422, 200]
    s_ids = {"leak-1", "leak-5", "leak-7"}
    wait_for(lambda: raw_source_ids(s), lambda ids: s_ids <= set(ids), timeout=30,
             what="planted good records on raw topics")
    wait_for(lambda: letters(s), lambda ls: len([m for m, _ in ls if m.get("partner") in (
        "herts-police", "enherts-nhs", "watford-bc")]) >= 5, timeout=30, what="dead letters")
    topics = [f"{s.topic_prefix}.raw.{f}" for f in FEEDS] + [f"{s.topic_prefix}.rejected"]
    scanned = 0
    leaks: list[tuple[str, str]] = []
    for topic in topics:
        for m in read_topic(s, topic):
            scanned += 1
            blob = (m.value or b"").decode() + (m.key or b"").decode() + repr(m.headers)
            leaks += [(topic, p) for p in PLANTED if p.casefold() in blob.casefold()]
    print(f"scanned {scanned} messages on {len(topics)} topics for {len(PLANTED)} identifiers")
    assert scanned >= 8
    assert not leaks, f"plaintext found: {leaks}"


# -- Idempotency-Key and limits --------------------------------------------------------------------

def test_given_idempotency_key_then_same_body_replays_and_other_body_is_422(
        ingest: Ingest) -> None:
    c = ingest.client
    h = {**ingest.key("dacorum-bc"), "Idempotency-Key": "batch-2024-05-01-a"}
    body = "\n".join(json.dumps(good("council", f"idem-{i}")) for i in range(3))
    first = c.post("/v1/feeds/council/ndjson", content=body, headers=h)
    again = c.post("/v1/feeds/council/ndjson", content=body, headers=h)
    other = c.post("/v1/feeds/council/ndjson", content=body + "\n", headers=h)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    ids = wait_for(lambda: raw_source_ids(ingest.settings),
                   lambda got: {"idem-0", "idem-1", "idem-2"} <= set(got), timeout=30,
                   what="idempotent batch")
    assert sorted(i for i in ids if i.startswith("idem-")) == ["idem-0", "idem-1", "idem-2"]


def test_given_oversized_body_or_batch_then_413_with_a_message(ingest: Ingest) -> None:
    c, h = ingest.client, ingest.key("herts-police")
    big = c.post("/v1/feeds/police/ndjson", headers=h, content="\n".join(
        json.dumps(good("police", f"big-{i}", summary="x" * 900)) for i in range(200)))
    assert big.status_code == 413
    assert "over the limit of 100000" in big.json()["detail"]
    many = c.post("/v1/feeds/police/ndjson", headers=h, content="\n".join(
        json.dumps({"source_id": f"m{i}"}) for i in range(51)))
    assert many.status_code == 413
    assert "51 records is over the limit of 50" in many.json()["detail"]
    empty = c.post("/v1/feeds/police/csv", headers=h, content="source_id,category\n")
    assert empty.status_code == 422
    assert empty.json()["detail"] == "the batch holds no records"


def test_given_partner_over_its_rate_then_429_with_retry_after(
        kafka_broker: BrokerInfo, tmp_path: Path) -> None:
    # One token per 100 s: no refill can land between the three posts, however slow the machine.
    settings, boot = hub_settings(kafka_broker.bootstrap, kafka_broker.idempotent_producer,
                                  tmp_path, ingest_rate_per_partner=0.01, ingest_rate_burst=2,
                                  ingest_inbound=False)
    with running_ingest(settings, boot) as ing:
        codes = [ing.client.post("/v1/feeds/police/records", json=police_record(f"rate-{i}"),
                                 headers=ing.key("herts-police")) for i in range(3)]
        other = ing.client.post("/v1/feeds/fire/records", json=good("fire", "rate-fire"),
                                headers=ing.key("herts-fire"))
    assert [r.status_code for r in codes] == [202, 202, 429]
    assert int(codes[2].headers["Retry-After"]) >= 1
    assert "over its limit" in codes[2].json()["detail"]
    assert other.status_code == 202  # the limit is per partner


# -- Kafka inbound topics ------------------------------------------------------------------------

def test_given_records_on_a_partners_inbound_topic_then_validated_like_http(
        ingest: Ingest) -> None:
    s = ingest.settings
    topic = f"{s.topic_prefix}.inbound.herts-police"
    producer = KafkaProducer(**kafka_python_common(s), acks="all")
    try:
        # One partition, so offsets name the messages unambiguously.
        sends = [
            producer.send(topic, json.dumps(good("police", "kin-1")).encode(), partition=0),
            producer.send(topic, b"{broken", partition=0),
            producer.send(topic, json.dumps(good("fire", "kin-3")).encode(),
                          headers=[("feed", b"fire")], partition=0),
            producer.send(topic, json.dumps(good("police", "kin-4", category="x")).encode(),
                          headers=[("feed", b"police")], partition=0),
        ]
        offsets = [f.get(timeout=30).offset for f in sends]
    finally:
        producer.close()
    wait_for(lambda: raw_source_ids(s), lambda ids: "kin-1" in ids, timeout=60,
             what="the inbound record on the raw topic")
    got = wait_for(lambda: [(m, h) for m, h in letters(s) if h.get("topic") == topic],
                   lambda ls: len(ls) >= 3, timeout=60, what="inbound dead letters")
    assert {h["partition"] for _, h in got} == {"0"}
    by_offset = {int(h["offset"]): (m, h) for m, h in got}
    assert set(by_offset) == set(offsets[1:])
    assert by_offset[offsets[1]][0]["problems"][0]["reason"].startswith("not valid JSON")
    assert "may not publish to feed 'fire'" in by_offset[offsets[2]][1]["reason"]
    assert by_offset[offsets[3]][0]["problems"][0]["pointer"] == "/category"
    assert all(h["partner"] == "herts-police" for _, h in got)
    assert "kin-3" not in raw_source_ids(s)


# -- dead letters: list and replay ----------------------------------------------------------------

def test_given_dead_letters_then_dlq_lists_and_replays_corrections_once(
        ingest: Ingest, tmp_path: Path) -> None:
    s, run = ingest.settings, CliRunner()
    env = cli_env(s)
    r = ingest.client.post("/v1/feeds/police/records", headers=ingest.key("herts-police"),
                           json=good("police", "dlq-1", category="shop-lifting",
                                     victim_name="Perpetua Gallimaufry"))
    rid = r.json()["rejection_id"]
    listed = wait_for(lambda: run.invoke(cli, ["dlq", "list", "--json"], env=env).output,
                      lambda out: rid in out, timeout=30, what="dead letter in dlq list")
    mine = next(json.loads(line) for line in listed.splitlines() if rid in line)
    assert (mine["partner"], mine["feed"], mine["index"]) == ("herts-police", "police", 0)
    assert mine["problems"][0]["pointer"] == "/category"
    assert "Gallimaufry" not in listed
    # Re-validation alone cannot fix a bad category: refused, with the reason.
    out = run.invoke(cli, ["dlq", "replay", rid], env=env)
    assert out.exit_code == 1
    assert f"{rid}: still_invalid" in out.output
    fixes = tmp_path / "fixes.ndjson"
    fixes.write_text(json.dumps({"rejection_id": rid, "record": good("police", "dlq-1")}))
    out = run.invoke(cli, ["dlq", "replay", "--corrected", str(fixes)], env=env)
    assert out.exit_code == 0, out.output
    assert f"{rid}: replayed (corrected)" in out.output
    again = run.invoke(cli, ["dlq", "replay", "--corrected", str(fixes)], env=env)
    assert "already replayed" in again.output
    assert raw_source_ids(s).count("dlq-1") == 1
    final = run.invoke(cli, ["dlq", "list", "--json", "--partner", "herts-police"], env=env)
    mine = next(json.loads(line) for line in final.output.splitlines() if rid in line)
    assert len(mine["replayed"]) == 1


def test_the_partner_api_reference_is_served_offline(ingest: Ingest) -> None:
    """/docs is the hub's own page (no CDN the council network cannot reach); the stock
    CDN-loaded pages are off; openapi.json is still there for tools."""
    r = ingest.client.get("/docs")
    assert r.status_code == 200
    assert "openapi.json" in r.text
    assert "http://" not in r.text
    assert "https://" not in r.text
    assert ingest.client.get("/redoc").status_code == 404
    spec = ingest.client.get("/openapi.json").json()
    assert "/v1/feeds/{feed}/records" in spec["paths"]
