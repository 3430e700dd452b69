"""The group's web page in headless Chromium (Debian ``chromium``), served by the real router of a
whole hub: the wards are drawn, records published through ingest show on the map, a planted alert
appears in the live list, and clicking it shows its evidence.

Chromium is driven by Playwright's Python package with ``executable_path`` pointing at the system
browser; Playwright's own browser downloads are never used. A missing chromium fails the test.

Over 400 lines because one whole hub in Chromium is started once for all the page's checks.
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

from demo.cluster import LocalHub
from demo.synthetic import Generator
from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from services.core.kafka.clients import kafka_python_common
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
    # The page loads its counts once, then every 30 s, from the router's tally, which catches
    # up at most every 2 s: wait until the router has counted the planted twelve, so the page's
    # first load shows them (on a fast broker the page could otherwise load inside those 2 s).

    def planted_count() -> int:
        wards = httpx.get(f"{base}/wards.json", headers=auth, timeout=20).json()["wards"]
        count = next(w["count"] for w in wards if w["ward_code"] == ward)
        return int(count) if str(count).isdigit() else 0

    wait_for(planted_count, lambda n: n >= 12, timeout=60, interval=1,
             what="the planted deliveries in the router's ward counts")

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
            expect(page.locator("#period-line")).to_contain_text("records", timeout=20_000)
            # At least the twelve planted (a published record may land in the same ward).
            hot = page.locator(f"#ward-{ward}")
            at_least_12 = re.compile(r"^(1[2-9]|[2-9]\d|\d{3,})$")
            expect(hot).to_have_attribute("data-count", at_least_12, timeout=20_000)
            expect(hot.locator("title")).to_contain_text(" this period")
            expect(hot).to_have_class(_class_with("(band|count)-[a-z0-9-]+"))
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


def test_the_officer_prints_a_tasking_pack_from_the_cli(hub: LocalHub, tmp_path: Path) -> None:
    """``s115hub group pack <group> --from --to``: the real command, against the hub's topics;
    its PDF read back with pdftotext. Runs after the page tests, on the same deliveries."""
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "s115hub")
    end = datetime.now(UTC).date() + timedelta(days=1)
    out = tmp_path / "pack.pdf"
    done = subprocess.run(
        [cli, "group", "pack", GROUP,
         "--from", (end - timedelta(days=28)).isoformat(), "--to", end.isoformat(),
         "-o", str(out)], env=hub.env(), capture_output=True, text=True, timeout=180,
        check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote {out}" in done.stdout
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Watford Hot-Spot Tasking Group: tasking pack" in text
    assert "What was withheld or generalised" in text
    bad = subprocess.run(
        [cli, "group", "pack", "grp-nowhere"],
        env=hub.env(), capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1
    assert "grp-nowhere" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- the tasking group's page, pack and a member's audited visit ---------------------------------

MEMBER = "ann.analyst@watford.gov.uk"


def _period() -> tuple[datetime, datetime]:
    """The page's default period: the 28 days ending with today (UTC)."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return end - timedelta(days=28), end


def plant_period(hub: LocalHub, wards: list[str]) -> None:
    """Deliveries with known shape: a busy ward, a quiet one (a small count), a category, last
    period's records, and two placed only at the district."""
    now = datetime.now(UTC).replace(microsecond=0)

    def rec(ward: str | None, days_ago: float, category: str = "burglary",
            **fields: object) -> SharedRecord:
        return SharedRecord(
            hub_record_id=f"period-{uuid.uuid4().hex}", partner="herts-police", feed="police",
            category=category, ward_code=ward, district_code=WATFORD, district_name="Watford",
            fields={"category": category,
                    "occurred_at": (now - timedelta(days=days_ago)).isoformat(),
                    "location": ward or WATFORD, **fields},
            protocol="police-district@1", released_at=now)

    busy, quiet = wards[2], wards[3]
    recs = [rec(busy, 1 + i / 4, tags=["forced-entry"]) for i in range(14)]
    recs += [rec(quiet, 2, "drugs"), rec(quiet, 3, "drugs"), rec(quiet, 4)]
    recs += [rec(busy, 30 + i) for i in range(3)]                 # the period before
    recs += [rec(None, 2, victim_dob="18-64"), rec(None, 5)]      # district only
    produce(hub, "deliver", [(r.hub_record_id, r.model_dump_json().encode()) for r in recs])


def delivered(hub: LocalHub) -> list[SharedRecord]:
    from tests.kafka_read import read_topic

    assert hub.settings is not None
    msgs = read_topic(hub.settings, f"{hub.settings.topic_prefix}.deliver.{GROUP}")
    seen: dict[str, SharedRecord] = {}
    for m in msgs:
        r = SharedRecord.model_validate_json(m.value)
        seen.setdefault(r.hub_record_id, r)
    return list(seen.values())


def in_period(recs: list[SharedRecord]) -> list[SharedRecord]:
    from services.router.web.records import record_time

    start, end = _period()
    return [r for r in recs if (t := record_time(r, "event")) is not None and start <= t < end]


def shown(count: int, below: int) -> str:
    return f"<{below}" if 0 < count < below else str(count)


PIXEL_OF_WARD = """([code, png]) => new Promise((resolve) => {
  // Sample the screenshot (not the DOM) at points inside the ward: only the ward path itself
  // answers elementFromPoint there, so labels and borders are skipped.
  const path = document.getElementById(`ward-${code}`);
  const box = path.getBoundingClientRect();
  const img = new Image();
  img.onload = () => {
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const g = c.getContext("2d"); g.drawImage(img, 0, 0);
    for (let i = 1; i < 20; i++) for (let j = 1; j < 20; j++) {
      const x = box.left + box.width * i / 20, y = box.top + box.height * j / 20;
      if (document.elementFromPoint(x, y) !== path) continue;
      const d = g.getImageData(Math.round(x), Math.round(y), 1, 1).data;
      resolve([d[0], d[1], d[2]]); return;
    }
    resolve(null);
  };
  img.src = "data:image/png;base64," + png;
})"""


def test_group_page_periods_table_records_exports_pack_and_the_members_audited_visit(
        hub: LocalHub, tmp_path: Path) -> None:
    import base64
    import json
    import os
    import subprocess

    from playwright.sync_api import expect, sync_playwright

    from services.router.web.tokens import group_token_store
    from tests.kafka_read import read_json

    exe = chromium_path()
    assert hub.settings is not None
    settings = hub.settings
    below = settings.group_page_suppress_below
    areas = AreaIndex.load(settings.boundaries_dir)
    watford = {w.code: w.name for w in areas.wards_in(WATFORD)}
    wards = sorted(watford)
    issued = group_token_store(settings).issue(GROUP, member=MEMBER)
    auth = {"Authorization": f"Bearer {issued.token}"}
    base = f"{hub.url('router')}/groups/{GROUP}"
    save = Path(os.environ.get("S115HUB_SAVE_SCREENSHOTS", tmp_path))
    save.mkdir(parents=True, exist_ok=True)

    plant_period(hub, wards)
    busy, quiet = wards[2], wards[3]
    # Counts the page must show: recounted here from the group's own topic.
    recs = wait_for(lambda: delivered(hub),
                    lambda rs: sum(1 for r in rs if r.hub_record_id.startswith("period-")) == 22,
                    timeout=30, what="the planted deliveries on the group's topic")
    now_recs = in_period(recs)
    per_ward = {code: sum(1 for r in now_recs if r.ward_code == code) for code in wards}
    district_only = sum(1 for r in now_recs if not r.ward_code)
    # The router's state catches up every 2 s: wait until its summary holds them all.
    wait_for(lambda: httpx.get(f"{base}/summary.json", headers=auth, timeout=20).json(),
             lambda doc: doc.get("total") == len(now_recs), timeout=30,
             what="the router's summary to hold every delivered record")

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=exe, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/?token={issued.token}")
            expect(page).to_have_title(re.compile("^Watford Hot-Spot Tasking Group"))
            expect(page.locator("header")).to_contain_text(f"signed in as {MEMBER}")
            table = page.locator("#wards-table tbody tr")
            expect(table).to_have_count(len(watford), timeout=20_000)
            # Every ward's count in the table and on the map equals what was delivered.
            for code in wards:
                row = page.locator(f'#wards-table tbody tr[data-ward="{code}"]')
                expect(row.locator("td.count")).to_have_text(shown(per_ward[code], below))
                expect(page.locator(f"#ward-{code}")).to_have_attribute(
                    "data-count", shown(per_ward[code], below))
                expect(page.locator(f"#label-{code} .name")).to_have_text(watford[code])
            expect(page.locator(f"#label-{busy} .count")).to_have_text(str(per_ward[busy]))
            expect(page.locator(f'#wards-table tr[data-ward="{quiet}"] td.count')
                   ).to_have_text(f"<{below}")
            # A change beside a small previous count is blank too; otherwise signed.
            expect(page.locator(f'#wards-table tr[data-ward="{busy}"] td.change')
                   ).to_have_text(re.compile(r"^([+-]\d+)?$"))
            # Beside a small count the change would give the hidden count back: left blank.
            expect(page.locator(f'#wards-table tr[data-ward="{quiet}"] td.change')
                   ).to_have_text("")
            expect(page.locator("#district-only")).to_have_attribute(
                "data-count", str(district_only))
            # Filters: the category list is the group's, and filtering narrows the counts.
            expect(page.locator("#f-category option", has_text="drugs")).to_have_count(1)
            page.select_option("#f-category", "drugs")
            page.click("#f-apply")
            expect(page.locator(f'#wards-table tr[data-ward="{busy}"] td.count')
                   ).to_have_text("0")
            page.select_option("#f-category", "")
            page.click("#f-apply")
            expect(page.locator(f'#wards-table tr[data-ward="{busy}"] td.count')
                   ).to_have_text(shown(per_ward[busy], below))

            # Keyboard: Tab to the busy ward's row and open it with Enter.
            row = page.locator(f'#wards-table tbody tr[data-ward="{busy}"]')
            row.focus()
            page.keyboard.press("Enter")
            expect(page.locator("#records-table tbody tr")).to_have_count(per_ward[busy])
            expect(page.locator("#records-table tbody")).to_contain_text("tags: forced-entry")
            expect(page.locator("#trend svg.trend-chart polyline.series")).not_to_have_count(0)
            expect(page.locator("#trend-ward")).to_contain_text(watford[busy])
            expect(page.locator("#status")).to_have_text("live", timeout=20_000)

            page.evaluate("window.scrollTo(0, 0)")
            shot = page.screenshot(path=str(save / "group-page.png"), full_page=False)
            colour = page.evaluate(PIXEL_OF_WARD, [busy, base64.b64encode(shot).decode()])
            assert colour == [0x3a, 0x6f, 0xa8], colour  # the darkest count colour
            empty = next(c for c in wards if per_ward[c] == 0)
            colour = page.evaluate(PIXEL_OF_WARD, [empty, base64.b64encode(shot).decode()])
            assert colour == [0xee, 0xf0, 0xf2], colour
            page.screenshot(path=str(save / "group-page-full.png"), full_page=True)

            csv_url = page.locator("#export-csv").get_attribute("href")
            pack_url = page.locator("#pack").get_attribute("href")
            assert not errors, errors
        finally:
            context.close()

    root = hub.url("router")
    with httpx.Client(timeout=120, headers=auth) as client:
        r = client.get(f"{root}{csv_url}")
        assert r.status_code == 200, r.text
        rows = r.text.strip().splitlines()
        assert len(rows) - 1 == len(now_recs)
        assert client.get(f"{base}/export.geojson").status_code == 200  # no from/to: defaults
        r = client.get(f"{root}{pack_url}")
        assert r.status_code == 200, r.text[:300]
        assert r.content.startswith(b"%PDF")
    (tmp_path / "pack.pdf").write_bytes(r.content)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "pack.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "Watford Hot-Spot Tasking Group: tasking pack" in text
    assert watford[busy] in text
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                    str(tmp_path / "pack.pdf"), str(save / "tasking-pack-page1")], check=True)

    # The member's visit is on the audit chain, by name: page, stream, records, export, pack.
    topic = f"{settings.topic_prefix}.audit"
    events = wait_for(
        lambda: [e for e in read_json(settings, topic)
                 if e.get("kind") == "access" and e["detail"].get("action") == "group.read"
                 and e["detail"].get("member") == MEMBER],
        lambda evs: {"page", "stream", "records", "export.csv", "export.geojson",
                     "pack.pdf"} <= {e["detail"]["what"] for e in evs},
        timeout=30, what="the member's reads on the audit chain")
    assert all(e["detail"]["actor"] == f"{MEMBER}@{GROUP}" for e in events)
    assert all(e["detail"]["group"] == GROUP for e in events)
    (save / "member-visit-audit.json").write_text(json.dumps(
        [{k: e[k] for k in ("seq", "at", "kind", "detail")} for e in events], indent=1))


def test_router_stops_promptly_while_a_group_stream_is_open(hub: LocalHub) -> None:
    """Ctrl-C on the demo with the page open: the router ends its streams and exits cleanly
    instead of waiting to be killed. Runs last in this module: it stops the hub's router."""
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
