"""End to end on a real broker: records of every feed published over HTTP reach exactly the
tasking groups entitled to them, and no direct identifier reaches any group."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import httpx
import pytest

from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.protocols.protocol import load_protocol
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PER_FEED = 25


def expected_groups(hub: LocalHub, feed: str, district: str) -> set[str]:
    """From the config files alone: groups covering the district that a protocol for the feed
    names as recipients and that subscribe to that protocol."""
    assert hub.boot is not None
    protocols = [load_protocol(p) for p in (hub.config_dir / "protocols").glob("*.yaml")]
    return {
        g.id for g in hub.boot.county.groups
        for p in protocols
        if feed in p.feeds and g.id in p.recipients and p.id in g.protocols
        and district in g.districts
    }


def personal_values(rec: dict[str, Any]) -> list[str]:
    from schemas.feeds import FEEDS  # noqa: F401 - documents where the list comes from

    keys = ("victim_name", "suspect_name", "address", "occupier_name", "occupier_phone",
            "patient_name", "nhs_number", "patient_postcode", "reporter_name", "reporter_phone",
            "reporter_email", "reporter_address", "victim_dob", "suspect_dob", "patient_dob")
    out = [str(rec[k]) for k in keys if rec.get(k)]
    # Names also leak by parts ("Ashworth" alone identifies in a small ward).
    for k in ("victim_name", "suspect_name", "occupier_name", "patient_name", "reporter_name"):
        if rec.get(k):
            out += [part for part in str(rec[k]).split() if len(part) > 3]
    loc = rec.get("location")
    if loc:  # the precise point: six decimals never leave depersonalise
        out += [f"{loc['lat']:.6f}", f"{loc['lon']:.6f}"]
    return out


@pytest.fixture(scope="module")
def published(herts_hub: LocalHub) -> dict[str, Any]:
    assert herts_hub.boot is not None
    assert herts_hub.settings is not None
    gen = Generator(AreaIndex.load(herts_hub.settings.boundaries_dir), seed=2)
    areas = AreaIndex.load(herts_hub.settings.boundaries_dir)
    expect: dict[str, set[str]] = {}
    plain: list[str] = []
    with httpx.Client(base_url=herts_hub.url("ingest"), timeout=30) as client:
        for feed in ("police", "fire", "health", "council"):
            for _ in range(PER_FEED):
                ward, rec = gen.record(feed)
                partner = gen.partner_for(feed, ward)
                r = client.post(f"/v1/feeds/{feed}/records", json=rec,
                                headers={"X-API-Key": herts_hub.boot.api_keys[partner]})
                assert r.status_code == 202, r.text
                rid = r.json()["hub_record_id"]
                expect[rid] = expected_groups(herts_hub, feed, areas.wards[ward].district_code)
                plain += personal_values(rec)
    return {"expect": expect, "plain": plain}


def deliveries(hub: LocalHub) -> dict[str, set[str]]:
    assert hub.settings is not None
    assert hub.boot is not None
    got: dict[str, set[str]] = defaultdict(set)
    for g in hub.boot.county.groups:
        for rec in read_json(hub.settings, f"{hub.settings.topic_prefix}.deliver.{g.id}"):
            got[rec["hub_record_id"]].add(g.id)
    return got


def test_given_records_of_every_feed_then_each_reaches_exactly_its_groups(
        herts_hub: LocalHub, published: dict[str, Any]) -> None:
    expect: dict[str, set[str]] = published["expect"]
    want = sum(len(v) for v in expect.values())
    got = wait_for(lambda: deliveries(herts_hub),
                   lambda d: sum(len(v) for v in d.values()) >= want, timeout=90,
                   what=f"{want} deliveries")
    assert all(expect[rid] for rid in expect), "every test record should have some recipient"
    wrong = {rid: (sorted(expect.get(rid, set())), sorted(groups))
             for rid, groups in got.items() if groups != expect.get(rid)}
    missing = [rid for rid in expect if rid not in got]
    assert not wrong, f"records at the wrong groups: {wrong}"
    assert not missing, f"records that reached no group: {missing}"


def test_given_delivered_records_then_no_direct_identifier_appears(
        herts_hub: LocalHub, published: dict[str, Any]) -> None:
    assert herts_hub.settings is not None
    assert herts_hub.boot is not None
    want = sum(len(v) for v in published["expect"].values())
    wait_for(lambda: deliveries(herts_hub), lambda d: sum(len(v) for v in d.values()) >= want,
             timeout=90, what="deliveries")
    scanned = 0
    found: list[tuple[str, str]] = []
    for g in herts_hub.boot.county.groups:
        topic = f"{herts_hub.settings.topic_prefix}.deliver.{g.id}"
        for msg in read_topic(herts_hub.settings, topic):
            text = msg.value.decode() + json.dumps([(k, v.decode()) for k, v in msg.headers or []])
            scanned += 1
            found += [(g.id, v) for v in published["plain"] if v.casefold() in text.casefold()]
    print(f"scanned {scanned} delivered messages for {len(published['plain'])} identifiers")
    assert scanned >= want
    assert not found, f"identifiers delivered: {found[:10]}"
