"""Poison suite (issue 12): malformed, truncated, wrongly typed, oversized and hostile messages,
generated with hypothesis, written straight to every topic a service reads (config, inbound, raw,
shared, audit facts), interleaved with good records, against the real broker and the three real
services.

Asserted, each from the topics themselves (never from what the hub reports about itself):
- every service stays up and ready;
- every good record reaches exactly its entitled groups, exactly once;
- every bad message has a dead letter naming its topic/offset (the runner's stages) or its
  inbound offset (ingest) with a reason; a bad config message has one per service;
- a revocation written (itself malformed) after a burst of bad config still stops delivery
  under that protocol.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.kafka_intake import record_id_key
from bench.workload import Item, expected_groups, read_deliveries, synthetic
from demo.cluster import SERVICES, LocalHub
from schemas.dead_letter import DeadLetter
from services.core.config.county import load_county
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.clients import make_producer
from services.core.kafka.topics import topics_for
from services.ingest.records import hub_record_id
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

HERTS = REPO_ROOT / "deploy" / "hertfordshire"
ROUNDS = 4
GOOD_PER_ROUND = 40
REVOKED = "health-county@1"

RAW = {"envelope": {"hub_record_id": "h" * 20, "partner": "herts-police", "feed": "police",
                    "source_id": "s-1", "received_at": "2026-11-01T10:00:00+00:00"},
       "fields": {"category": "burglary"}, "sealed": None}
SHARED: dict[str, Any] = {"hub_record_id": "h" * 20, "partner": "herts-police", "feed": "police",
          "category": "burglary", "ward_code": None, "ward_name": None, "district_code": None,
          "district_name": None, "fields": {}, "protocol": "police-district@1", "key_epoch": None,
          "released_at": "2026-11-01T10:00:00+00:00"}
FACT = {"fact_id": "disclosure/grp-herts-county/" + "h" * 20, "kind": "disclosure",
        "at": "2026-11-01T10:00:00Z", "hub_record_id": "h" * 20, "partner": "herts-police",
        "feed": "police", "recipient": "grp-herts-county", "protocol": "police-district@1",
        "lawful_basis": "s115", "fields": {"category": "keep"}, "payload_digest": "0" * 64,
        "detail": {}}
INBOUND = {"source_id": "poison-1", "category": "burglary", "occurred_at": "2026-11-01T10:00:00Z",
           "location": {"lat": 51.75, "lon": -0.34}}

#: Values no field of these templates accepts: none of them is a list.
WRONG = st.sampled_from([[], [1, 2], [{"a": None}], [[]]])


def mutate(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """The template with one field (or one nested field of a typed object) replaced by a value of
    the wrong type. ``fields`` of a raw record is free-form (its feed's rules apply later), so
    only its top level is mutated."""
    paths = [(k,) for k in template] + [(k, j) for k, v in template.items()
                                        if isinstance(v, dict) and k != "fields" for j in v]

    def put(path: tuple[str, ...], value: Any) -> bytes:
        doc = json.loads(json.dumps(template))
        target = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        return json.dumps(doc).encode()

    return st.builds(put, st.sampled_from(paths), WRONG)


def truncated(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    text = json.dumps(template).encode()
    return st.integers(1, len(text) - 1).map(lambda n: text[:n])


HOSTILE = st.sampled_from([
    b"[" * 50_000, b'{"a":' * 20_000, b"NaN", b'{"x": NaN}', b'"\\ud800"', b"\x00" * 64,
    b"1e999999", b"null", b"{}", b"[]", b'"' + b"A" * 300_000 + b'"',  # oversized
    json.dumps({"fields": 5}).encode(),
])


def poison(template: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(min_size=0, max_size=300), truncated(template), mutate(template),
                     HOSTILE)


def config_poison() -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(key, value) pairs none of which is a valid config message (never a real tombstone)."""
    bad_value = st.one_of(st.binary(max_size=200).filter(lambda b: _not_json_object(b)),
                          st.sampled_from([b"null", b"[]", b'{"yaml": 5}', b'{"source": "x"}',
                                           b'{"county": 5}', b'{"party": []}', b"{"]))
    key = st.sampled_from([b"county", b"protocol/" + REVOKED.encode(), b"protocol/new@1",
                           b"officer/k-poison", b"weird/thing", b"\xff\xfe"])
    # No keyless messages: Apache Kafka refuses them on a compacted topic itself (tansu takes
    # them); the follower's answer to one is in tests/unit/core/test_config_fail_closed.py.
    return st.tuples(key, bad_value)


def _not_json_object(b: bytes) -> bool:
    try:
        return not isinstance(json.loads(b), dict)
    except ValueError:
        return True


def bursts() -> list[dict[str, list[Any]]]:
    """ROUNDS bursts of poison, drawn by hypothesis (its variety, our bounded count)."""
    out: list[dict[str, list[Any]]] = []

    @settings(max_examples=ROUNDS, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.fixed_dictionaries({
        "config": st.lists(config_poison(), min_size=3, max_size=6),
        "inbound": st.lists(poison(INBOUND), min_size=3, max_size=8),
        "raw": st.lists(poison(RAW), min_size=3, max_size=8),
        "shared": st.lists(poison(SHARED), min_size=3, max_size=8),
        "facts": st.lists(st.one_of(poison(FACT), st.just(json.dumps(
            {**FACT, "kind": "config", "fact_id": "config/x"}).encode())), min_size=3,
            max_size=8),
    }))
    def draw(burst: dict[str, list[Any]]) -> None:
        if len(out) < ROUNDS:
            out.append(burst)

    draw()
    return out


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("poison"), HERTS)
    yield h
    # Shown only when the test fails: where each stage stood.
    for svc in SERVICES:
        try:
            text = httpx.get(f"{h.url(svc)}/metrics", timeout=5).text
        except httpx.HTTPError as exc:
            print(f"==> {svc}: no metrics ({exc})")
            continue
        print(f"==> {svc} metrics")
        print("\n".join(line for line in text.splitlines()
                        if line.startswith("s115hub_") and not line.endswith(" 0.0")))
    h.stop()
    for log in sorted((h.state_dir / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            print(f"==> {log.name} (tail)\n{text[-3000:]}")


Written = list[tuple[str, str, int, int]]  # (kind, topic, partition, offset)
#: The first bytes of each bad message written, by (topic, partition, offset): a failure names them.
SAMPLES: dict[tuple[str, int, int], bytes] = {}


async def write(s: Settings, good: list[list[Item]], burst_list: list[dict[str, list[Any]]],
                revoke: bool = False) -> Written:
    t = topics_for(s)
    producer = make_producer(s, max_request_size=2 * 1024 * 1024)
    await producer.start()
    written: Written = []
    try:
        async def put(kind: str, topic: str, value: bytes | None, key: bytes | None = None,
                      headers: list[tuple[str, bytes]] | None = None) -> None:
            md = await (await producer.send(topic, value, key=key, headers=headers))
            if kind:
                written.append((kind, topic, md.partition, md.offset))
                SAMPLES[(topic, md.partition, md.offset)] = (value or b"")[:80]

        for chunk, burst in zip(good, burst_list if not revoke else [], strict=True):
            for it in chunk:  # good records, as a partner publishes them
                await put("", t.inbound(it.partner), it.line, it.source_id.encode(),
                          [("feed", it.feed.encode())])
            for key, value in burst["config"]:
                await put("config", t.config, value, key)
            for value in burst["inbound"]:
                await put("inbound", t.inbound("herts-police"), value, b"p")
            for value in burst["raw"]:
                await put("raw", t.raw("police"), value, b"p")
            for value in burst["shared"]:
                await put("shared", t.shared, value, b"p")
            for value in burst["facts"]:
                await put("facts", t.audit_facts, value, b"p")
        if revoke:
            # After a last burst of bad config, a revocation that is itself malformed: it must
            # still apply.
            for key, value in burst_list[-1]["config"]:
                await put("config", t.config, value, key)
            await put("config", t.config, b"{not json", f"revoked/{REVOKED}".encode())
    finally:
        await producer.stop()
    return written


def metric(hub: LocalHub, svc: str, pattern: str) -> float:
    text = httpx.get(f"{hub.url(svc)}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if re.match(pattern, line))


async def publish_tail(s: Settings, items: list[Item]) -> None:
    t = topics_for(s)
    producer = make_producer(s)
    await producer.start()
    try:
        futs = [await producer.send(t.inbound(it.partner), it.line, key=it.source_id.encode(),
                                    headers=[("feed", it.feed.encode())]) for it in items]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def test_given_poison_on_every_topic_then_good_records_arrive_once_and_bad_ones_are_dead_lettered(
        hub: LocalHub) -> None:
    s = hub.settings
    assert s is not None
    t = topics_for(s)
    county = load_county(HERTS / "county.yaml")
    expect = expected_groups(county, HERTS / "protocols")
    key = record_id_key(hub.state_dir)
    items = synthetic(ROUNDS * GOOD_PER_ROUND + 400, s.boundaries_dir, seed=1215)
    good = [items[i * GOOD_PER_ROUND:(i + 1) * GOOD_PER_ROUND] for i in range(ROUNDS)]
    health_tail = [it for it in items[ROUNDS * GOOD_PER_ROUND:] if it.feed == "health"][:15]
    assert len(health_tail) >= 10
    burst_list = bursts()
    assert len(burst_list) == ROUNDS

    written = asyncio.run(write(s, good, burst_list))

    # -- every good record exactly where it is entitled, once ---------------------------------
    want: dict[str, set[str]] = {g.id: set() for g in county.groups}
    for it in (x for chunk in good for x in chunk):
        for g in expect(it.feed, it.district):
            want[g].add(hub_record_id(key, it.partner, it.source_id))

    def delivered() -> dict[str, list[str]]:
        return read_deliveries(s, want).ids

    def missing(d: dict[str, list[str]]) -> dict[str, int]:
        return {g: len(want[g] - set(d[g])) for g in want if want[g] - set(d[g])}

    wait_for(lambda: missing(delivered()), lambda m: not m, timeout=120,
             what="every good record delivered (missing per group)")

    # -- the revocation applied (malformed as it was), then health records stop ---------------
    written += asyncio.run(write(s, [], burst_list, revoke=True))
    wait_for(lambda: metric(hub, "depersonalise",
                            rf's115hub_depersonalise_protocol_live{{protocol="{REVOKED}"}}'),
             lambda v: v == 0, timeout=60, what=f"{REVOKED} no longer live")
    before = metric(hub, "depersonalise", r's115hub_depersonalise_records_blocked_total\{.*'
                                          r'cause="revoked"')
    asyncio.run(publish_tail(s, health_tail))
    wait_for(lambda: metric(hub, "depersonalise", r's115hub_depersonalise_records_blocked_total'
                                                  r'\{.*cause="revoked"'),
             lambda v: v >= before + len(health_tail), timeout=60,
             what="the health records after the revocation blocked as revoked")

    # -- dead letters: one per bad message (one per service for config), each with a reason ----
    def letters() -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(m.value) for m in read_topic(s, t.rejected)
                if dict(m.headers or ()).get("kind") != b"replayed"]

    runner_written = [w for w in written if w[0] in ("raw", "shared", "facts", "config")]
    inbound_written = [w for w in written if w[0] == "inbound"]

    def unaccounted(ls: list[DeadLetter]) -> list[tuple[str, str, int, int]]:
        at = Counter((x.topic, x.partition, x.offset) for x in ls if x.topic is not None)
        # Ingest's own letter (its rules judged the message) names the inbound topic in its
        # context; the runner's (ingest itself failed on it) names topic and partition directly.
        inbound = Counter((x.context or {}).get("topic", "") + f"/{x.offset}" for x in ls
                          if x.stage == "ingest" and x.offset is not None)
        return ([w for w in runner_written
                 if at[(w[1], w[2], w[3])] < (3 if w[0] == "config" else 1)]
                + [w for w in inbound_written
                   if not inbound[f"{w[1]}/{w[3]}"] and not at[(w[1], w[2], w[3])]])

    def described(ls: list[DeadLetter]) -> list[tuple[tuple[str, str, int, int], bytes]]:
        return [(w, SAMPLES.get((w[1], w[2], w[3]), b"")) for w in unaccounted(ls)]

    wait_for(lambda: described(letters()), lambda r: not r, timeout=60,
             what="a dead letter for every bad message (those without one, with its first bytes)")
    all_letters = letters()
    assert all(lt.problems and all(p.reason for p in lt.problems) for lt in all_letters)
    # No letter copies the message: the planted oversized value is nowhere on the topic.
    assert all(len(m.value) < 100_000 or dict(m.headers or ()).get("stage") is None
               for m in read_topic(s, t.rejected))

    got = delivered()
    for g, ids in got.items():
        dupes = [rid for rid, n in Counter(ids).items() if n > 1]
        assert not dupes, f"{g}: delivered twice: {dupes[:5]}"
        assert set(ids) == want[g], f"{g}: deliveries differ from the entitled good records"
    tail_ids = {hub_record_id(key, it.partner, it.source_id) for it in health_tail}
    assert not tail_ids & {rid for ids in got.values() for rid in ids}, \
        "a record was delivered under a revoked protocol"

    # -- every service still up and ready ------------------------------------------------------
    for svc in SERVICES:
        r = httpx.get(f"{hub.url(svc)}/readyz", timeout=5)
        assert r.status_code == 200, f"{svc} not ready: {r.text}"

    by_stage = Counter(lt.stage for lt in all_letters)
    print(f"poison: {len(written)} bad messages written "
          f"({dict(Counter(w[0] for w in written))}), {sum(len(c) for c in good)} good records, "
          f"{len(all_letters)} dead letters by stage {dict(by_stage)}; "
          f"{sum(len(v) for v in want.values())} deliveries expected and found once each; "
          f"{len(health_tail)} records after the revocation, 0 delivered")

