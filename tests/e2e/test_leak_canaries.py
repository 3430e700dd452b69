"""LEAK test through the running pipeline: records of all four feeds with a unique canary planted
in every personal field and inside the free text go through ingest, depersonalise and router;
then every message on every topic downstream of depersonalise is scanned for every canary.

Canaries are the generator's planted tokens (names, addresses, free text) plus each record's own
values that carry no token because their format is fixed: phone numbers, emails, NHS numbers,
postcodes, dates of birth (two spellings) and the precise coordinates (6 decimals).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from services.core.areas import AreaIndex
from services.core.kafka import make_consumer
from services.demo.cluster import LocalHub
from services.demo.synthetic import Generator
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PER_FEED = 60
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
    pattern = re.compile("|".join(re.escape(c) for c in sorted(canaries, key=len, reverse=True)),
                         re.IGNORECASE)
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
    total = sum(scanned.values())
    print(f"\nleak scan: {len(ids)} records published ({PER_FEED} per feed); {len(canaries)} "
          f"canaries ({len(gen.planted)} planted tokens); {total} messages scanned on "
          f"{len(topics)} topics; {len(found)} canaries found; {time.monotonic() - t0:.1f}s")
    for topic, n in scanned.items():
        print(f"  {topic}: {n}")
    assert scanned[shared_topic] >= len(ids)
    assert not found, f"canaries downstream of depersonalise: {found[:20]}"
