"""The group page's issue-17 pieces: the feed note's data (feed name, state, lag and late count
only) behind the group's token, and the separate alert explanation script."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.config.county import Group
from services.core.config.settings import Settings
from services.core.ops.metrics import ServiceMetrics
from services.router.subscriptions import Subscription
from services.router.web import make_web_app
from services.router.web.tokens import group_token_store

STATUS = [{"feed": "fire", "state": "silent", "lag_seconds": 200_000, "late_counted": 3,
           "records": 41, "watermark": "2026-03-01T10:00:00+00:00", "too_old": 0,
           "refused_future": 0},
          {"feed": "police", "state": "ok", "lag_seconds": 60, "late_counted": 0,
           "records": 900, "watermark": "2026-03-03T10:00:00+00:00", "too_old": 0,
           "refused_future": 1}]


@dataclass
class Source:
    subs: list[Subscription] = field(default_factory=list)

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def feed_status(self) -> list[dict[str, Any]]:
        return STATUS


@dataclass
class Facts:
    """Read-audit facts as the web app hands them over (the Kafka path is tested end to end)."""
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, fact: Mapping[str, Any]) -> None:
        self.sent.append(dict(fact))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    sub = Subscription.of(Group(id="grp-a", name="grp-a", districts=["E07000103"], officer="x"))
    root = FastAPI()
    root.mount("/groups", make_web_app(settings, Source([sub]), ServiceMetrics("router"),
                                       audit_sink=Facts()))
    token = group_token_store(settings).issue("grp-a").token
    with TestClient(root, follow_redirects=False) as c:
        yield c, token


def test_given_a_silent_feed_then_feeds_json_says_so_without_counts(
        client: tuple[TestClient, str]) -> None:
    c, token = client
    r = c.get("/groups/grp-a/feeds.json", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    feeds = r.json()["feeds"]
    assert feeds[0] == {"feed": "fire", "state": "silent", "lag_seconds": 200_000,
                        "late_counted": 3}
    assert all(set(f) == {"feed", "state", "lag_seconds", "late_counted"} for f in feeds)


def test_the_page_loads_the_explanation_script_and_has_a_place_for_feed_notes(
        client: tuple[TestClient, str]) -> None:
    c, token = client
    page = c.get(f"/groups/grp-a/?token={token}")
    if page.status_code in (302, 303):
        page = c.get(page.headers["location"])
    assert 'src="/groups/_static/alert_why.js"' in page.text
    assert 'id="feed-notes"' in page.text
    script = c.get("/groups/_static/alert_why.js")
    assert script.status_code == 200
    assert "s115AlertWhy" in script.text
