"""End to end on a real broker: a cluster planted in a known ward and week, after weeks of quiet
background elsewhere, comes out as a weekly HotspotAlert on the right groups' hot-spot topics,
with its evidence, an audit fact, and a count that equals a recount of what the group received.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from demo.cluster import LocalHub
from demo.synthetic import Generator
from schemas.alert import HotspotAlert
from services.core.areas import AreaIndex
from services.router.hotspots.adjacency import ward_adjacency
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CATEGORY = "burglary"
PLANTED = 12  # the risk gate withholds the ward of the first k-1 = 2 records of a new ward
HOT_DISTRICT, QUIET_DISTRICT, OTHER_DISTRICT = "E07000243", "E07000098", "E07000103"
GROUPS = {"E07000243": "grp-stevenage", "E07000098": "grp-hertsmere",
          "E07000103": "grp-watford"}


def router_seen(hub: LocalHub) -> int:
    """Shared records the router's hot-spot stage has taken in (any outcome)."""
    text = httpx.get(f"{hub.url('router')}/metrics", timeout=5).text
    return int(sum(float(v) for v in re.findall(
        r'^s115hub_router_hotspot_records_total\{[^}]*\} (\S+)$', text, re.M)))


def at_least(want: int) -> Callable[[int], bool]:
    return lambda n: n >= want


def publish(hub: LocalHub, records: list[dict[str, Any]]) -> None:
    assert hub.boot is not None
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for rec in records:
            r = client.post("/v1/feeds/police/records", json=rec,
                            headers={"X-API-Key": hub.boot.api_keys["herts-police"]})
            assert r.status_code == 202, r.text


def in_window(rec: dict[str, Any], start: datetime, end: datetime) -> bool:
    value = rec["fields"].get("occurred_at")
    if not isinstance(value, str) or "T" not in value:
        return False
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return start <= when < end


@pytest.fixture(scope="module")
def planted(herts_hub: LocalHub) -> dict[str, Any]:
    assert herts_hub.settings is not None
    areas = AreaIndex.load(herts_hub.settings.boundaries_dir)
    gen = Generator(areas, seed=5)
    adjacency = ward_adjacency(herts_hub.settings.boundaries_dir / "wards.geojson")
    hot = next(w.code for w in sorted(areas.wards_in(HOT_DISTRICT), key=lambda w: w.code)
               if adjacency[w.code])
    quiet = sorted(w.code for w in areas.wards_in(QUIET_DISTRICT))[0]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday(), weeks=12)

    def police(ward: str, when: datetime) -> dict[str, Any]:
        _, rec = gen.record("police")
        lat, lon = areas.random_point_in(ward, gen.rng)
        return {**rec, "category": CATEGORY, "location": {"lat": lat, "lon": lon},
                "occurred_at": when.isoformat()}

    # Phases, each counted before the next, so event time only moves forward: ten weeks of one
    # record a week in a quiet ward (the category's history), then the cluster in week ten,
    # then records in week eleven that close week ten (and stay open for the restart test).
    phases = [[police(quiet, monday + timedelta(weeks=w, days=1, hours=9))] for w in range(10)]
    hot_week = monday + timedelta(weeks=10)
    phases.append([police(hot, hot_week + timedelta(days=2, hours=20 + i % 3))
                   for i in range(PLANTED)])
    phases.append([police(quiet, monday + timedelta(weeks=11, days=1, hours=9 + i))
                   for i in range(3)])
    sent = 0
    for phase in phases:
        publish(herts_hub, phase)
        sent += len(phase)
        wait_for(lambda: router_seen(herts_hub), at_least(sent), timeout=60,
                 what=f"{sent} shared records at the hot-spot stage")
    return {"hot": hot, "quiet": quiet, "week": hot_week, "adjacency": adjacency}


def alerts(hub: LocalHub, group: str) -> list[HotspotAlert]:
    assert hub.settings is not None
    return [HotspotAlert.model_validate(a)
            for a in read_json(hub.settings, f"{hub.settings.topic_prefix}.hotspots.{group}")]


def test_given_a_planted_cluster_then_its_groups_get_a_weekly_alert_with_evidence(
        herts_hub: LocalHub, planted: dict[str, Any]) -> None:
    assert herts_hub.settings is not None
    hot, week = planted["hot"], planted["week"]
    group = GROUPS[HOT_DISTRICT]

    def weekly(g: str) -> list[HotspotAlert]:
        return [a for a in alerts(herts_hub, g) if a.window == "week"]

    got = wait_for(lambda: weekly(group), lambda a: len(a) > 0, timeout=60,
                   what=f"a weekly alert on {group}")
    [alert] = [a for a in got if a.ward_code == hot]
    print(f"\nalert: {alert.model_dump_json()}")
    assert alert.group == group
    assert alert.category == CATEGORY
    assert alert.window_start == week
    assert alert.window_end == week + timedelta(weeks=1)
    assert alert.protocol.startswith("police-district@")
    assert alert.p_value <= alert.bh_threshold < 0.01
    assert alert.gi_z is not None
    assert alert.gi_z > 0
    assert set(alert.neighbours) <= planted["adjacency"][hot]
    assert alert.district_code == HOT_DISTRICT
    assert alert.ward_name

    # The count is what the group itself received for that ward, category and week.
    delivered = read_json(herts_hub.settings,
                          f"{herts_hub.settings.topic_prefix}.deliver.{group}")
    recount = sum(1 for r in delivered if r["ward_code"] == hot and r["category"] == CATEGORY
                  and in_window(r, alert.window_start, alert.window_end))
    if alert.count.startswith("<"):
        assert recount < int(alert.count[1:])
    else:
        assert int(alert.count) == recount
    assert alert.expected < recount

    # The county group covers every district, so it is told too; other districts are not.
    county = [a for a in weekly("grp-herts-county") if a.ward_code == hot]
    assert len(county) == 1
    assert county[0].alert_id != alert.alert_id
    assert not [a for a in alerts(herts_hub, GROUPS[OTHER_DISTRICT]) if a.ward_code == hot]
    assert not list(weekly(GROUPS[QUIET_DISTRICT])), "the quiet ward must not alert"


def test_given_an_alert_then_an_audit_fact_records_its_disclosure(
        herts_hub: LocalHub, planted: dict[str, Any]) -> None:
    assert herts_hub.settings is not None
    group = GROUPS[HOT_DISTRICT]
    sent = wait_for(lambda: alerts(herts_hub, group), lambda a: len(a) > 0, timeout=60,
                    what="an alert")
    topic = f"{herts_hub.settings.topic_prefix}.audit.facts"
    want = {f"alert/{group}/{a.alert_id}" for a in sent}
    facts = wait_for(lambda: {json.loads(m.value)["fact_id"]
                              for m in read_topic(herts_hub.settings, topic)},  # type: ignore[arg-type]
                     lambda ids: want <= ids, timeout=30, what="alert facts")
    assert want <= facts


def test_given_the_router_killed_then_window_state_equals_a_recount_and_no_alert_repeats(
        herts_hub: LocalHub, planted: dict[str, Any]) -> None:
    from services.router.hotspot_runner import decode_snapshot
    from services.router.hotspot_stage import HotspotStage, recount

    settings = herts_hub.settings
    assert settings is not None
    assert herts_hub.boot is not None
    group = GROUPS[HOT_DISTRICT]
    before = wait_for(lambda: alerts(herts_hub, group), lambda a: len(a) > 0, timeout=60,
                      what="an alert")
    herts_hub.kill("router")
    herts_hub.start_service("router")
    herts_hub.wait_ready(60, services=("router",))

    # The restarted router re-read the topics and raised its alerts again: none sent twice.
    for g in (group, "grp-herts-county"):
        ids = [a.alert_id for a in alerts(herts_hub, g)]
        assert len(ids) == len(set(ids)), f"{g} got an alert twice"
    assert {a.alert_id for a in alerts(herts_hub, group)} == {a.alert_id for a in before}

    latest = {m.key: m.value for m in read_topic(
        settings, f"{settings.topic_prefix}.router.hotspot-state")}
    state = decode_snapshot(latest)
    assert state is not None
    stage = HotspotStage()
    stage.restore(state)
    deliveries = [r for g in herts_hub.boot.county.groups
                  for r in read_json(settings, f"{settings.topic_prefix}.deliver.{g.id}")]
    want = recount(deliveries)
    open_windows = {(k[0], k[1]) for k in stage.open_counts()}
    assert open_windows, "some windows should still be open"
    print(f"\nrestored state: {stage.state_size()} keys, counted {stage.counted}, "
          f"open cells {len(stage.open_counts())}")
    assert stage.open_counts() == {k: v for k, v in want.items() if (k[0], k[1]) in open_windows}
    # Every windowed delivery was counted exactly once, closed windows included.
    assert stage.counted == sum(v for k, v in want.items() if k[0] == "week")
