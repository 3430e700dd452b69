"""The officer page (issue 16) in headless Chromium (Debian ``chromium`` through Playwright's
``executable_path``), served by the real router of a whole hub: sign-in with an officer token
(hash only on disk), status listing every group, reconciliation with its CSV, dead letters
without personal data, protocols with review dates and their document, issuing and revoking a
group credential that then works and stops working, audit verification; every view and action
on the audit chain; nothing without signing in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.cli.main import app
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from tests.browser.test_group_page import CHROMIUM_FLAGS, chromium_path
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.slow]
PLANTED_NAME = "Zebedee Quuxworthy"  # typed into a rejected record; must never be shown


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("officer-hub"),
                  REPO_ROOT / "deploy" / "hertfordshire")
    yield h
    h.stop()


def cli(hub: LocalHub, *args: str) -> str:
    assert hub.settings is not None
    env = {"S115HUB_KAFKA_BOOTSTRAP_SERVERS": hub.settings.kafka_bootstrap_servers,
           "S115HUB_TOPIC_PREFIX": hub.settings.topic_prefix,
           "S115HUB_STATE_DIR": str(hub.state_dir), "S115HUB_CONFIG_DIR": str(hub.config_dir)}
    res = CliRunner().invoke(app, list(args), env=env)
    assert res.exit_code == 0, res.output
    return res.output


def publish(hub: LocalHub) -> list[str]:
    assert hub.boot is not None
    assert hub.settings is not None
    gen = Generator(AreaIndex.load(hub.settings.boundaries_dir), seed=3)
    key = {"X-API-Key": hub.boot.api_keys["herts-police"]}
    sids = []
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as c:
        for i in range(3):
            _, rec = gen.record("police")
            r = c.post("/v1/feeds/police/records", json={**rec, "source_id": f"OFF-{i}"},
                       headers=key)
            assert r.status_code == 202, r.text
            sids.append(f"OFF-{i}")
        r = c.post("/v1/feeds/police/records", headers=key, json={
            **rec, "source_id": "OFF-bad", "category": "nonsense", "victim_name": PLANTED_NAME})
        assert r.status_code == 422, r.text
    return sids


def officer_actions(hub: LocalHub, officer: str) -> list[str]:
    assert hub.settings is not None
    return [e["detail"]["subject"] for e in read_json(hub.settings,
                                                      f"{hub.settings.topic_prefix}.audit")
            if e.get("kind") == "config" and e["detail"].get("actor") == f"{officer}@officer-page"]


def test_officer_page_signed_in_shows_accounts_manages_credentials_and_audits_each_action(
        hub: LocalHub, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    exe = chromium_path()
    assert hub.boot is not None
    base = f"{hub.url('router')}/officer"
    # Nothing without signing in.
    for path in ("/dead-letters", "/reconcile", "/credentials", "/protocols", "/audit"):
        assert httpx.get(base + path, timeout=10).status_code == 401, path
    line = cli(hub, "officer", "token", "issue", "dana")
    token = line.split(": ", 1)[1].split()[0]
    assert token not in (hub.state_dir / "officer-tokens.json").read_text()  # hash only
    sids = publish(hub)
    wait_for(lambda: cli(hub, "reconcile", "herts-police", "--from", "2000-01-01",
                         "--to", "2100-01-01"),
             lambda out: "pending 0" in out and "delivered 3" in out, timeout=90, interval=2,
             what="the three records to be delivered")

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=exe, headless=True, args=CHROMIUM_FLAGS,
            accept_downloads=True)
        try:
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/")
            page.fill("#token", "s115o_nope_nope")
            page.click("#sign-in")
            expect(page.locator("#error")).to_be_visible()
            page.fill("#token", token)
            page.click("#sign-in")
            expect(page.locator("#officer")).to_have_text("dana")
            groups = page.locator("#groups tbody tr")
            expect(groups).to_have_count(len(hub.boot.county.groups))
            expect(page.locator("#partners")).to_contain_text("herts-police")

            page.goto(f"{base}/reconcile?partner=herts-police&start=2000-01-01&end=2100-01-01")
            records = page.locator("#records")
            for sid in [*sids, "OFF-bad"]:
                expect(records).to_contain_text(sid)
            expect(page.locator("#counts")).to_contain_text("3")
            with page.expect_download() as dl:
                page.click("#csv")
            csv_text = Path(dl.value.path()).read_text(encoding="utf-8")
            assert csv_text.startswith("source_id,feed,outcome")
            assert "OFF-bad,police,rejected" in csv_text

            page.goto(f"{base}/dead-letters")
            expect(page.locator("#letters")).to_contain_text("OFF-bad")
            assert PLANTED_NAME not in page.content()

            page.goto(f"{base}/protocols")
            row = page.locator("#protocols tr", has_text="police-district@1")
            expect(row).to_contain_text("2027-06-30")
            row.locator("a").click()
            expect(page.locator("h1")).to_contain_text("Police-recorded crime")
            expect(page.locator("body")).to_contain_text("never leaves the hub")

            page.goto(f"{base}/credentials")
            page.click('#group-credentials button.issue[data-holder="grp-watford"]')
            issued = page.locator("#issued").inner_text().strip()
            export = f"{hub.url('router')}/groups/grp-watford/export.csv"
            q = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
            bearer = {"Authorization": f"Bearer {issued}"}
            assert httpx.get(export, params=q, headers=bearer, timeout=20).status_code == 200
            token_id = issued.split("_")[1]
            page.click(f'#group-credentials button.revoke[data-token-id="{token_id}"]')
            expect(page.locator("#revoked")).to_contain_text(token_id)
            assert httpx.get(export, params=q, headers=bearer, timeout=20).status_code == 401

            page.goto(f"{base}/audit")
            page.click("#verify")
            expect(page.locator("#verdict")).to_have_class("ok")
            expect(page.locator("#verdict")).to_contain_text("OK:")

            page.click("#sign-out")
            expect(page.locator("#token")).to_be_visible()
            assert not errors, errors
        finally:
            ctx.close()

    wanted = {"officer-page", "view:status", "view:reconcile", "view:reconcile.csv",
              "view:dead-letters", "view:protocols", "view:protocol", "view:credentials",
              "group.credential.issued", "group.credential.revoked", "view:audit",
              "view:audit.verify", "sign-out"}
    done = wait_for(lambda: set(officer_actions(hub, "dana")), lambda got: wanted <= got,
                    timeout=60, what="every officer action on the audit chain")
    assert wanted <= done


def test_a_revoked_officer_token_is_refused_at_once(hub: LocalHub) -> None:
    line = cli(hub, "officer", "token", "issue", "eve")
    token = line.split(": ", 1)[1].split()[0]
    base = f"{hub.url('router')}/officer"
    with httpx.Client(base_url=base, timeout=20, follow_redirects=False) as c:
        r = c.post("/sign-in", content=f"token={token}",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 303
        cookie: dict[str, Any] = {"s115hub_officer": token}
        assert httpx.get(f"{base}/protocols", cookies=cookie, timeout=20).status_code == 200
        cli(hub, "officer", "token", "revoke", "eve")
        assert httpx.get(f"{base}/protocols", cookies=cookie, timeout=20).status_code == 401
    assert json.loads((hub.state_dir / "officer-tokens.json").read_text())
