"""The group's web page in headless Chromium (Debian ``chromium``), served by the real router of a
whole hub: the wards are drawn, records published through ingest show on the map, a planted alert
appears in the live list, and clicking it shows its evidence.

Chromium is driven by Playwright's Python package with ``executable_path`` pointing at the system
browser; Playwright's own browser downloads are never used. A missing chromium fails the test.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.kafka import kafka_python_common
from services.core.settings import REPO_ROOT
from services.demo.cluster import LocalHub
from services.demo.synthetic import Generator
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]

GROUP = "grp-watford"
WATFORD = "E07000103"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("Debian chromium is not installed (apt-get install -y chromium); the group "
                    "page cannot be tested without it")
    return path


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("page-hub"),
                  REPO_ROOT / "deploy" / "hertfordshire")
    yield h
    h.stop()


def publish_watford_records(hub: LocalHub, n: int) -> list[str]:
    assert hub.boot is not None
    assert hub.settings is not None
    areas = AreaIndex.load(hub.settings.boundaries_dir)
    wards = sorted(w.code for w in areas.wards_in(WATFORD))
    gen = Generator(areas, seed=7, wards=wards)
    ids = []
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for _ in range(n):
            _, rec = gen.record("police")
            r = client.post("/v1/feeds/police/records", json=rec,
                            headers={"X-API-Key": hub.boot.api_keys["herts-police"]})
            assert r.status_code == 202, r.text
            ids.append(r.json()["hub_record_id"])
    return ids


def produce(hub: LocalHub, topic_kind: str, items: list[tuple[str, bytes]]) -> None:
    from kafka import KafkaProducer

    assert hub.settings is not None
    producer = KafkaProducer(**kafka_python_common(hub.settings), acks="all")
    try:
        for key, value in items:
            producer.send(f"{hub.settings.topic_prefix}.{topic_kind}.{GROUP}", value,
                          key=key.encode())
        producer.flush()
    finally:
        producer.close()


def plant_deliveries(hub: LocalHub, ward: str, n: int) -> None:
    """Ward-level deliveries as the router writes them. Records published through ingest in a
    test this small are generalised to the district by the risk gate (too few per ward to be
    k-anonymous), so they cannot exercise the ward colours."""
    now = datetime.now(UTC).replace(microsecond=0)
    recs = [SharedRecord(
        hub_record_id=f"planted-{uuid.uuid4().hex}", partner="herts-police", feed="police",
        category="burglary", ward_code=ward, district_code=WATFORD,
        fields={"category": "burglary", "occurred_at": (now - timedelta(minutes=5)).isoformat(),
                "location": ward},
        protocol="police-district@1", released_at=now) for _ in range(n)]
    produce(hub, "deliver", [(r.hub_record_id, r.model_dump_json().encode()) for r in recs])


def plant_alert(hub: LocalHub, ward: str, neighbour: str) -> HotspotAlert:
    start = datetime(2026, 11, 16, tzinfo=UTC)
    alert = HotspotAlert(
        alert_id=f"planted-{uuid.uuid4().hex[:10]}", group=GROUP, ward_code=ward,
        ward_name="Planted ward", district_code=WATFORD, category="criminal-damage-arson",
        window="week", window_start=start, window_end=start + timedelta(days=7), count="17",
        expected=4.25, p_value=0.000123, bh_threshold=0.0004, gi_z=2.87, neighbours=[neighbour],
        protocol="police-district@1", raised_at=start + timedelta(days=7, seconds=30))
    produce(hub, "hotspots", [(alert.alert_id, alert.model_dump_json().encode())])
    return alert


def test_group_page_shows_wards_counts_and_a_planted_alert_with_its_evidence(
        hub: LocalHub, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    exe = chromium_path()
    assert hub.boot is not None
    assert hub.settings is not None
    areas = AreaIndex.load(hub.settings.boundaries_dir)
    watford = {w.code: w.name for w in areas.wards_in(WATFORD)}
    ward, neighbour = sorted(watford)[0], sorted(watford)[1]
    token = hub.boot.group_tokens[GROUP]
    base = f"{hub.url('router')}/groups/{GROUP}"

    ids = publish_watford_records(hub, 6)
    auth = {"Authorization": f"Bearer {token}"}
    # Through the real pipeline: the router delivers them and the export sees them.
    wait_for(lambda: httpx.get(f"{base}/export.csv", headers=auth, timeout=20, params={
                 "from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z",
                 "by": "released"}).text,
             lambda text: all(i in text for i in ids), timeout=60,
             what="the published records in the group's export")
    plant_deliveries(hub, ward, 12)

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/?token={token}")
            assert page.url == f"{base}/", "the token should leave the address bar"
            expect(page.locator("path.ward")).to_have_count(len(watford), timeout=20_000)
            # Wards are coloured from this week's counts once wards.json has answered.
            expect(page.locator("#window")).to_contain_text("week from", timeout=20_000)
            # At least the twelve planted (a published record may land in the same ward).
            hot = page.locator(f"#ward-{ward}")
            at_least_12 = re.compile(r"^(1[2-9]|[2-9]\d|\d{3,})$")
            expect(hot).to_have_attribute("data-count", at_least_12, timeout=20_000)
            expect(hot.locator("title")).to_contain_text(" this week")
            expect(hot).to_have_class(_class_with("band-[a-z-]+"))
            expect(page.locator("#status")).to_have_text("live", timeout=20_000)

            alert = plant_alert(hub, ward, neighbour)
            item = page.locator(f'li.alert[data-alert-id="{alert.alert_id}"]')
            expect(item).to_be_visible(timeout=20_000)
            expect(item).to_contain_text("criminal-damage-arson")
            expect(page.locator(f"#ward-{ward}")).to_have_class(_class_with("alerting"))
            assert page.locator("#evidence").is_hidden()

            item.click()
            evidence = page.locator("#evidence")
            expect(evidence).to_be_visible()
            for text in (ward, "criminal-damage-arson", "week", "17", "4.25", "0.000123",
                         f"{watford[neighbour]} ({neighbour})", "police-district@1", "2.87",
                         "2026-11-16"):
                expect(evidence).to_contain_text(text)
            expect(page.locator(f"#ward-{ward}")).to_have_class(_class_with("selected"))
            assert not errors, errors
        finally:
            context.close()


def _class_with(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){name}(\s|$)")


def test_router_stops_promptly_while_a_group_stream_is_open(hub: LocalHub) -> None:
    """Ctrl-C on the demo with the page open: the router ends its streams and exits cleanly
    instead of waiting to be killed. Runs after the page test, on the same hub."""
    import time

    assert hub.boot is not None
    token = hub.boot.group_tokens[GROUP]
    url = f"{hub.url('router')}/groups/{GROUP}/stream?kinds=alerts&from=end"
    with httpx.Client(timeout=httpx.Timeout(30.0)) as client, \
            client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines).startswith("retry:")
        t0 = time.monotonic()
        hub.stop_service("router", timeout=20)
        took = time.monotonic() - t0
        rest = list(lines)  # the stream ends rather than hanging
    assert hub.procs["router"].returncode == 0, hub.procs["router"].returncode
    assert took < 10, f"router took {took:.1f}s to stop with a stream open"
    assert "event: closing" in rest
