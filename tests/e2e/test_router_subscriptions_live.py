"""End to end on a real broker: a group's districts changed on the config topic take effect in
the running router, without a restart, and only for records routed after the change."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.config.publish import publish
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
DACORUM, WATFORD = "E07000096", "E07000103"


def send(hub: LocalHub, gen: Generator, areas: AreaIndex, n: int) -> list[str]:
    """Publish ``n`` police records in Dacorum wards; their hub record ids."""
    assert hub.boot is not None
    wards = sorted(w.code for w in areas.wards_in(DACORUM))
    ids = []
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for i in range(n):
            _, rec = gen.record("police")
            lat, lon = areas.random_point_in(wards[i % len(wards)], gen.rng)
            r = client.post("/v1/feeds/police/records",
                            json={**rec, "location": {"lat": lat, "lon": lon}},
                            headers={"X-API-Key": hub.boot.api_keys["herts-police"]})
            assert r.status_code == 202, r.text
            ids.append(r.json()["hub_record_id"])
    return ids


def contains(item: str) -> Callable[[set[str]], bool]:
    return lambda got: item in got


def delivered(hub: LocalHub, group: str) -> set[str]:
    assert hub.settings is not None
    topic = f"{hub.settings.topic_prefix}.deliver.{group}"
    return {r["hub_record_id"] for r in read_json(hub.settings, topic)}


def set_watford_districts(hub: LocalHub, districts: list[str]) -> None:
    assert hub.boot is not None
    assert hub.settings is not None
    county: dict[str, Any] = hub.boot.county.model_dump(mode="json")
    for g in county["groups"]:
        if g["id"] == "grp-watford":
            g["districts"] = districts
    # As an officer's county would, it pins the officer key file the hub trusts: a county
    # without the pin trusts no key and every protocol stops (fail-closed, issue 13).
    from services.core.crypto.officer_trust import fingerprint, load_log

    anchors = load_log(hub.settings.resolved_officer_keys_file())
    assert anchors is not None
    county["officer_keys_sha256"] = fingerprint(anchors)
    publish(hub.settings, [("county", county)], actor="test")


def until_watford_gets_dacorum(hub: LocalHub, gen: Generator, areas: AreaIndex,
                               timeout: float = 60) -> None:
    """Probe records until one reaches grp-watford: the router has applied the change."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [probe] = send(hub, gen, areas, 1)
        wait_for(lambda: delivered(hub, "grp-dacorum"), contains(probe), timeout=30,
                 what="the probe at grp-dacorum")
        if probe in delivered(hub, "grp-watford"):
            return
    raise AssertionError(f"grp-watford got no Dacorum record within {timeout:.0f}s")


def test_given_districts_changed_on_the_config_topic_then_records_follow_live(
        herts_hub: LocalHub) -> None:
    assert herts_hub.settings is not None
    areas = AreaIndex.load(herts_hub.settings.boundaries_dir)
    gen = Generator(areas, seed=9)

    before = send(herts_hub, gen, areas, 4)
    wait_for(lambda: delivered(herts_hub, "grp-dacorum"), lambda d: set(before) <= d,
             timeout=60, what="Dacorum records at grp-dacorum")
    assert not set(before) & delivered(herts_hub, "grp-watford")

    set_watford_districts(herts_hub, [WATFORD, DACORUM])
    until_watford_gets_dacorum(herts_hub, gen, areas)
    after = send(herts_hub, gen, areas, 4)
    wait_for(lambda: delivered(herts_hub, "grp-watford"), lambda d: set(after) <= d,
             timeout=60, what="Dacorum records at grp-watford after the change")
    assert set(after) <= delivered(herts_hub, "grp-dacorum")
    # Not retroactive: records routed before the change stay where they went.
    assert not set(before) & delivered(herts_hub, "grp-watford")

    set_watford_districts(herts_hub, [WATFORD])
    # Once a probe no longer reaches grp-watford, the removal has been applied.
    deadline = time.monotonic() + 60
    while True:
        [probe] = send(herts_hub, gen, areas, 1)
        wait_for(lambda: delivered(herts_hub, "grp-dacorum"), contains(probe),
                 timeout=30, what="the probe at grp-dacorum")
        if probe not in delivered(herts_hub, "grp-watford"):
            break
        assert time.monotonic() < deadline, "grp-watford still gets Dacorum records"
    last = send(herts_hub, gen, areas, 3)
    wait_for(lambda: delivered(herts_hub, "grp-dacorum"), lambda d: set(last) <= d,
             timeout=60, what="the last records at grp-dacorum")
    assert not set(last) & delivered(herts_hub, "grp-watford")
