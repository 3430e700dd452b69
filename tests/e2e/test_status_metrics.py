"""Metrics and ``s115hub status`` on a running hub: a known input moves each counter by exactly
the expected amount, every service exposes the required families with bounded labels, and the
status screen reports the same figures."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.cli.main import app
from services.cli.status_cmds import Samples, parse_metrics, total_by
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_json, read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
PER_FEED = 6
BAD = 3

REQUIRED = {
    "ingest": ["s115hub_ingest_records_in_total", "s115hub_ingest_records_rejected_total",
               "s115hub_ingest_http_request_duration_seconds"],
    "depersonalise": ["s115hub_depersonalise_records_in_total",
                      "s115hub_depersonalise_records_released_total",
                      "s115hub_depersonalise_records_blocked_total",
                      "s115hub_depersonalise_stage_batch_duration_seconds",
                      "s115hub_depersonalise_consumer_lag_records"],
    "router": ["s115hub_router_records_in_total", "s115hub_router_deliveries_total",
               "s115hub_router_stage_batch_duration_seconds",
               "s115hub_router_consumer_lag_records", "s115hub_router_hotspot_alerts_total",
               "s115hub_router_audit_events_total", "s115hub_router_audit_chain_length"],
}
# Every label the hub may use: each has a value set bounded by config or code, none is an id.
BOUNDED_LABELS = {"partner", "feed", "reason", "group", "protocol", "cause", "topic", "route",
                  "method", "status", "window", "outcome", "action", "kind", "stage", "le"}


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Any:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("status"),
                  REPO_ROOT / "deploy" / "hertfordshire")
    yield h
    h.stop()


def scrape(hub: LocalHub, svc: str) -> Samples:
    r = httpx.get(f"{hub.url(svc)}/metrics", timeout=5)
    r.raise_for_status()
    families[svc] = set(re.findall(r"^# TYPE (\S+) ", r.text, re.M))
    return parse_metrics(r.text)


#: Declared families per service, from the latest scrape (a labelled counter that has not
#: counted yet is declared but has no samples).
families: dict[str, set[str]] = {}


def delta(after: Samples, before: Samples, name: str, *keys: str) -> Counter[tuple[str, ...]]:
    a, b = total_by(after, name, *keys), total_by(before, name, *keys)
    return Counter({k: v - b.get(k, 0.0) for k, v in a.items() if v - b.get(k, 0.0)})


@pytest.fixture(scope="module")
def run(hub: LocalHub) -> dict[str, Any]:
    assert hub.boot is not None
    assert hub.settings is not None
    before = {svc: scrape(hub, svc) for svc in ("ingest", "depersonalise", "router")}
    gen = Generator(AreaIndex.load(hub.settings.boundaries_dir), seed=11)
    sent: Counter[tuple[str, str]] = Counter()
    ids: list[str] = []
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for feed in ("police", "fire", "health", "council"):
            for _ in range(PER_FEED):
                ward, rec = gen.record(feed)
                partner = gen.partner_for(feed, ward)
                r = client.post(f"/v1/feeds/{feed}/records", json=rec,
                                headers={"X-API-Key": hub.boot.api_keys[partner]})
                assert r.status_code == 202, r.text
                sent[(partner, feed)] += 1
                ids.append(r.json()["hub_record_id"])
        ward, rec = gen.record("police")
        partner = gen.partner_for("police", ward)
        for i in range(BAD):
            bad = {**rec, "source_id": f"bad-{i}", "category": "not-a-category"}
            r = client.post("/v1/feeds/police/records", json=bad,
                            headers={"X-API-Key": hub.boot.api_keys[partner]})
            assert r.status_code == 422, r.text
    s = hub.settings
    groups = [g.id for g in hub.boot.county.groups]

    total = sum(sent.values())

    def counts() -> dict[str, float]:
        now = {svc: scrape(hub, svc) for svc in ("depersonalise", "router")}

        def moved(svc: str, name: str) -> float:
            return sum(delta(now[svc], before[svc], name).values())
        return {"in": moved("depersonalise", "s115hub_depersonalise_records_in_total"),
                "released": moved("depersonalise", "s115hub_depersonalise_records_released_total"),
                "routed": moved("router", "s115hub_router_records_in_total"),
                "delivered": moved("router", "s115hub_router_deliveries_total")}

    # Settled when depersonalise has read every accepted record and the router every released
    # one (the services' own counters), and the group topics hold what the router counted.
    c = wait_for(counts, lambda c: c["in"] == total and c["routed"] == c["released"],
                 timeout=120, interval=1, what="every record through both stages")

    def delivered() -> int:
        return sum(len(read_topic(s, f"{s.topic_prefix}.deliver.{g}")) for g in groups)

    n = wait_for(delivered, lambda n: n >= c["delivered"], timeout=60, interval=1,
                 what="the counted deliveries on the group topics")
    shared = len(read_topic(s, f"{s.topic_prefix}.shared"))
    after = {svc: scrape(hub, svc) for svc in ("ingest", "depersonalise", "router")}
    return {"before": before, "after": after, "sent": sent, "ids": ids,
            "delivered": n, "shared": shared, "bad_partner": partner}


def test_counters_move_by_exactly_the_known_input(run: dict[str, Any]) -> None:
    b, a = run["before"], run["after"]
    sent = {k: float(v) for k, v in run["sent"].items()}
    assert dict(delta(a["ingest"], b["ingest"], "s115hub_ingest_records_in_total",
                      "partner", "feed")) == sent
    rejected = delta(a["ingest"], b["ingest"], "s115hub_ingest_records_rejected_total",
                     "partner", "feed")
    assert dict(rejected) == {(run["bad_partner"], "police"): float(BAD)}
    assert dict(delta(a["depersonalise"], b["depersonalise"],
                      "s115hub_depersonalise_records_in_total", "partner", "feed")) == sent
    released = sum(delta(a["depersonalise"], b["depersonalise"],
                         "s115hub_depersonalise_records_released_total").values())
    blocked = sum(delta(a["depersonalise"], b["depersonalise"],
                        "s115hub_depersonalise_records_blocked_total").values())
    assert released == run["shared"]
    assert released + blocked >= sum(sent.values())
    assert sum(delta(a["router"], b["router"], "s115hub_router_records_in_total").values()) \
        == run["shared"]
    assert sum(delta(a["router"], b["router"], "s115hub_router_deliveries_total").values()) \
        == run["delivered"]
    assert sum(delta(a["router"], b["router"], "s115hub_router_audit_events_total",
                     "kind").values()) >= run["delivered"]


def test_every_service_exposes_the_required_families_with_bounded_labels(
        run: dict[str, Any]) -> None:
    ids = set(run["ids"])
    for svc, names in REQUIRED.items():
        samples = run["after"][svc]
        missing = [n for n in names if n not in families[svc]]
        assert not missing, f"{svc} lacks {missing}"
        for name, series in samples.items():
            if not name.startswith("s115hub_"):
                continue
            assert name.startswith(f"s115hub_{svc}_"), name
            assert re.fullmatch(r"[a-z0-9_]+", name), name
            labels = {k for lab, _ in series for k in lab}
            assert labels <= BOUNDED_LABELS, f"{name}: unbounded labels {labels - BOUNDED_LABELS}"
            values = {v for lab, _ in series for v in lab.values()}
            assert not values & ids, f"{name} carries a record id as a label"
            assert len(series) < 2000, f"{name}: {len(series)} series"


def test_status_reports_the_same_figures(hub: LocalHub, run: dict[str, Any]) -> None:
    assert hub.settings is not None
    assert hub.boot is not None
    s = hub.settings
    env = {"S115HUB_KAFKA_BOOTSTRAP_SERVERS": s.kafka_bootstrap_servers,
           "S115HUB_TOPIC_PREFIX": s.topic_prefix, "S115HUB_STATE_DIR": str(hub.state_dir),
           "S115HUB_INGEST_PORT": str(hub.ports["ingest"]),
           "S115HUB_DEPERSONALISE_PORT": str(hub.ports["depersonalise"]),
           "S115HUB_ROUTER_PORT": str(hub.ports["router"])}
    # Deliveries are counted from the audit chain, which the chainer writes just after delivery.
    audit = f"{s.topic_prefix}.audit"
    wait_for(lambda: sum(1 for e in read_json(s, audit) if e.get("kind") == "disclosure"),
             lambda n: n >= run["delivered"], timeout=60, what="disclosures on the chain")
    res = CliRunner().invoke(app, ["status"], env=env)
    assert res.exit_code == 0, res.output
    out = res.output
    per_feed: Counter[str] = Counter()
    for (_, feed), n in run["sent"].items():
        per_feed[feed] += n
    for feed, n in per_feed.items():
        row = next(line for line in out.splitlines() if line.strip().startswith(feed + " "))
        assert "never" not in row, row
        cols = row.split()
        assert int(cols[3]) == n, row  # feed, date, time, accepted, rejected, ...
    police = next(line for line in out.splitlines() if line.strip().startswith("police "))
    assert int(police.split()[4]) == BAD, police
    for p in hub.boot.protocols:
        assert re.search(rf"{re.escape(p.ref)}\s+LIVE", out), out
    deliveries = total_by(run["after"]["router"], "s115hub_router_deliveries_total", "group")
    for (group,), n in deliveries.items():
        assert re.search(rf"{re.escape(group)}\s+{int(n)}\s+\d+", out), (group, out)
    # Every group is listed, those without deliveries too (issue 16).
    for group in (g.id for g in hub.boot.county.groups):
        assert re.search(rf"^\s+{re.escape(group)}\s+\d+\s+\d+$", out, re.M), (group, out)
    print(out)
