"""LEAK test through the running pipeline: records of all four feeds with a unique canary planted
in every personal field and inside the free text go through ingest, depersonalise and router;
then every message on every topic downstream of depersonalise is scanned for every canary.

Canaries are the generator's planted tokens (names, addresses, free text) plus each record's own
values that carry no token because their format is fixed: phone numbers, emails, NHS numbers,
postcodes, dates of birth (two spellings) and the precise coordinates (6 decimals); and the
free-text canary corpus (``bench/canary_corpus.py``: witnesses, nicknames, odd numbers, what3words,
zero-width and look-alike letters ...), of which every planted fragment that is not an everyday
word is scanned for. Beyond the topics, the county group's web page, its wards data, its
server-sent event stream and both exports are scanned too.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bench.canary_corpus import build
from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.kafka.clients import make_consumer
from services.protocols.vocabularies import load_vocabulary
from services.router.web.tokens import group_token_store
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PER_FEED = 60
CORPUS_PER_FEED = 40
#: Topics upstream of depersonalise, or not about records: not part of the scan.
UPSTREAM = (".raw.", ".inbound.")
NOT_SCANNED_SUFFIXES = (".config",)

_FIXED = ("occupier_phone", "reporter_phone", "reporter_email", "nhs_number", "patient_postcode")
_DOBS = ("victim_dob", "suspect_dob", "patient_dob")


def canaries_of(rec: dict[str, Any]) -> set[str]:
    out = {str(rec[k]) for k in _FIXED if rec.get(k)}
    for k in _DOBS:
        if rec.get(k):
            y, m, d = str(rec[k]).split("-")
            out |= {str(rec[k]), f"{d}/{m}/{y}"}
    if k_nhs := rec.get("nhs_number"):
        out.add(str(k_nhs).replace(" ", ""))
    loc = rec.get("location")
    if loc:
        out |= {f"{loc['lat']:.6f}", f"{loc['lon']:.6f}"}
    return out


def corpus_canaries(fragments: list[str], areas: AreaIndex) -> set[str]:
    """Planted fragments a scan can look for without matching ordinary text: names and other
    words not on any shipped list nor in a ward or district name (those are released on purpose
    with every record), five letters or more, and long digit strings."""
    everyday = {w.lower() for name in [*(w.name for w in areas.wards.values()),
                                       *areas.district_names.values()]
                for w in re.findall(r"[A-Za-z']+", name)}
    for ref in ("incident-en@1", "towns-east@1"):
        v = load_vocabulary(ref)
        everyday |= v.words | v.lower_only | v.places
    out = set()
    for f in fragments:
        digits = sum(c.isdigit() for c in f)
        if digits >= 7 or (digits == 0 and len(f) >= 5 and f.lower() not in everyday
                           and f.isascii()):
            out.add(f)
    return out


def web_bodies(hub: LocalHub, group: str, expected: int) -> dict[str, str]:
    """The group's page, wards data, exports and event stream as a subscriber would read them."""
    assert hub.settings is not None
    token = group_token_store(hub.settings).issue(group).token
    base = f"{hub.url('router')}/groups/{group}"
    now = datetime.now(UTC)
    span = {"from": (now - timedelta(days=30)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(), "by": "released"}
    bodies: dict[str, str] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for name, path, params in (("page", "/", {}), ("wards.json", "/wards.json", {}),
                                   ("export.csv", "/export.csv", span),
                                   ("export.geojson", "/export.geojson", span)):
            r = client.get(base + path, params=params)
            assert r.status_code == 200, (name, r.status_code, r.text[:200])
            bodies[name] = r.text
        assert bodies["export.csv"].count("\n") >= expected, "the export holds every record"
        lines: list[str] = []
        deadline = time.monotonic() + 90
        with client.stream("GET", base + "/stream", params={"from": "start"}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                lines.append(line)
                delivered = sum(x.startswith("event: delivery") for x in lines)
                if delivered >= expected or time.monotonic() > deadline:
                    break
        assert sum(x.startswith("event: delivery") for x in lines) >= expected, "SSE replay"
        bodies["stream"] = "\n".join(lines)
    return bodies


def all_topics(hub: LocalHub) -> list[str]:
    assert hub.settings is not None
    settings = hub.settings

    async def go() -> list[str]:
        consumer = make_consumer(settings, group_id=None)
        await consumer.start()
        try:
            return sorted(await consumer.topics())
        finally:
            await consumer.stop()

    prefix = settings.topic_prefix + "."
    return [t for t in asyncio.run(go()) if t.startswith(prefix)
            and not any(u in t for u in UPSTREAM) and not t.endswith(NOT_SCANNED_SUFFIXES)]


def test_given_canaries_in_every_personal_field_then_none_reaches_any_downstream_topic(
        herts_hub: LocalHub) -> None:
    t0 = time.monotonic()
    assert herts_hub.boot is not None
    assert herts_hub.settings is not None
    settings = herts_hub.settings
    areas = AreaIndex.load(settings.boundaries_dir)
    gen = Generator(areas, seed=31, canaries=True)
    canaries: set[str] = set()
    ids: set[str] = set()
    with httpx.Client(base_url=herts_hub.url("ingest"), timeout=30) as client:
        for feed in ("police", "fire", "health", "council"):
            for _ in range(PER_FEED):
                ward, rec = gen.record(feed)
                canaries |= canaries_of(rec)
                r = client.post(f"/v1/feeds/{feed}/records", json=rec, headers={
                    "X-API-Key": herts_hub.boot.api_keys[gen.partner_for(feed, ward)]})
                assert r.status_code == 202, r.text
                ids.add(r.json()["hub_record_id"])
    canaries |= set(gen.planted)
    assert len(gen.planted) >= 4 * PER_FEED * 3, "the generator planted fewer tokens than fields"
    # The free-text canary corpus, planted into more generator records.
    bases: dict[str, list[dict[str, Any]]] = {}
    partners: dict[str, list[str]] = {}
    for feed in ("police", "fire", "health", "council"):
        for _ in range(CORPUS_PER_FEED):
            ward, rec = gen.record(feed)
            bases.setdefault(feed, []).append(rec)
            partners.setdefault(feed, []).append(gen.partner_for(feed, ward))
    corpus = build(seed=17, per_feed=CORPUS_PER_FEED, bases=bases)
    planted_fragments = [f for rec in corpus for p in rec.planted for f in p.fragments]
    corpus_scan = corpus_canaries(planted_fragments, areas)
    assert len(corpus_scan) >= 200, "too few scannable corpus fragments"
    with httpx.Client(base_url=herts_hub.url("ingest"), timeout=30) as client:
        for i, crec in enumerate(corpus):
            partner = partners[crec.feed][i % CORPUS_PER_FEED]
            r = client.post(f"/v1/feeds/{crec.feed}/records", json=crec.fields, headers={
                "X-API-Key": herts_hub.boot.api_keys[partner]})
            assert r.status_code == 202, r.text
            ids.add(r.json()["hub_record_id"])
            canaries |= canaries_of(crec.fields)
    canaries |= set(gen.planted)

    shared_topic = f"{settings.topic_prefix}.shared"
    county = f"{settings.topic_prefix}.deliver.grp-herts-county"
    # Every record reaches s115.shared (one protocol per feed) and the county group, which every
    # Hertfordshire protocol names: then depersonalise and router are both done with them.
    wait_for(lambda: {r["hub_record_id"] for r in read_json(settings, shared_topic)},
             lambda got: ids <= got, timeout=120, what="every record on the shared topic")
    wait_for(lambda: {r["hub_record_id"] for r in read_json(settings, county)},
             lambda got: ids <= got, timeout=120, what="every record delivered to the county")

    topics = all_topics(herts_hub)
    assert shared_topic in topics
    assert county in topics
    assert any(".deliver." in t for t in topics)
    assert any(".audit" in t for t in topics)
    def alternation(values: set[str]) -> str:
        return "|".join(re.escape(c) for c in sorted(values, key=len, reverse=True))

    # The corpus fragments as whole words only: a planted surname must not match inside a longer
    # word. The generator's canaries anywhere, as before.
    pattern = re.compile(f"(?:{alternation(canaries - corpus_scan)})|(?<![A-Za-z0-9])"
                         f"(?:{alternation(corpus_scan)})(?![A-Za-z0-9])", re.IGNORECASE)
    scanned: dict[str, int] = {}
    found: list[tuple[str, str]] = []
    for topic in topics:
        msgs = read_topic(settings, topic)
        scanned[topic] = len(msgs)
        for msg in msgs:
            parts = [msg.key or b"", msg.value or b""]
            parts += [k.encode() + b"=" + (v or b"") for k, v in msg.headers or []]
            text = b"\n".join(parts).decode("utf-8", errors="replace")
            found += [(topic, m.group(0)) for m in pattern.finditer(text)]
    bodies = web_bodies(herts_hub, "grp-herts-county", len(ids))
    for name, body in bodies.items():
        scanned[f"web:{name}"] = len(body)
        found += [(f"web:{name}", m.group(0)) for m in pattern.finditer(body)]
    total = sum(v for k, v in scanned.items() if not k.startswith("web:"))
    print(f"\nleak scan: {len(ids)} records published ({PER_FEED} per feed); {len(canaries)} "
          f"canaries ({len(gen.planted)} planted tokens); {total} messages scanned on "
          f"{len(topics)} topics; {len(found)} canaries found; {time.monotonic() - t0:.1f}s")
    for topic, n in scanned.items():
        print(f"  {topic}: {n}")
    assert scanned[shared_topic] >= len(ids)
    assert not found, f"canaries downstream of depersonalise: {found[:20]}"
