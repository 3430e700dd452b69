"""Every group route refuses missing, unknown and revoked tokens (401) and another group's token
(403) before it reads anything. No broker is needed: refusal happens before any Kafka call; the
end-to-end tests repeat the isolation check against the real broker."""

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

Q = "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z"
DATA_ROUTES = ["wards.svg", "wards.json", "feeds.json", "stream", f"export.csv?{Q}",
               f"export.geojson?{Q}", "export.csv", "summary.json", "trend.json", "records.json",
               "pack.pdf"]


@dataclass
class Source:
    subs: list[Subscription] = field(default_factory=list)
    is_ready: bool = True

    def ready(self) -> tuple[bool, str]:
        return (True, "ok") if self.is_ready else (False, "config not loaded")


def _sub(gid: str, district: str) -> Subscription:
    return Subscription.of(Group(id=gid, name=gid, districts=[district], officer="x"))


@dataclass
class Facts:
    """Audit facts as the web app hands them over (the Kafka path is tested end to end)."""
    sent: list[dict[str, Any]] = field(default_factory=list)
    broken: bool = False

    async def send(self, fact: Mapping[str, Any]) -> None:
        if self.broken:
            raise ConnectionError("broker down")
        self.sent.append(dict(fact))


FACTS = Facts()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Settings, Source]]:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1")
    source = Source([_sub("grp-a", "E07000103"), _sub("grp-b", "E07000096")])
    root = FastAPI()
    FACTS.sent.clear()
    FACTS.broken = False
    root.mount("/groups", make_web_app(settings, source, ServiceMetrics("router"),
                                       audit_sink=FACTS))
    with TestClient(root, follow_redirects=False) as client:
        yield client, settings, source


@pytest.mark.parametrize("route", DATA_ROUTES)
def test_no_or_bad_token_is_401(env: tuple[TestClient, Settings, Source], route: str) -> None:
    client, settings, _ = env
    group_token_store(settings).issue("grp-a")
    r = client.get(f"/groups/grp-a/{route}")
    assert r.status_code == 401
    assert r.json()["detail"] == "no token"
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get(f"/groups/grp-a/{route}", headers={"Authorization": "Bearer s115g_x_y"})
    assert r.status_code == 401
    assert r.json()["detail"] == "unknown or revoked token"


@pytest.mark.parametrize("route", DATA_ROUTES)
@pytest.mark.parametrize("how", ["header", "query", "cookie"])
def test_another_groups_token_is_403_however_it_is_sent(
        env: tuple[TestClient, Settings, Source], route: str, how: str) -> None:
    client, settings, _ = env
    token_a = group_token_store(settings).issue("grp-a").token
    url = f"/groups/grp-b/{route}"
    if how == "header":
        r = client.get(url, headers={"Authorization": f"Bearer {token_a}"})
    elif how == "query":
        r = client.get(url + ("&" if "?" in url else "?") + f"token={token_a}")
    else:
        client.cookies.set("s115hub_group_token", token_a)
        r = client.get(url)
        client.cookies.clear()
    assert r.status_code == 403, r.text
    assert "another group" in r.json()["detail"]


@pytest.mark.parametrize("route", DATA_ROUTES)
def test_revoked_token_is_401_on_the_next_request(env: tuple[TestClient, Settings, Source],
                                                  route: str) -> None:
    client, settings, _ = env
    store = group_token_store(settings)
    t = store.issue("grp-a")
    auth = {"Authorization": f"Bearer {t.token}"}
    assert client.get("/groups/grp-a/wards.svg", headers=auth).status_code == 200
    group_token_store(settings).revoke("grp-a")  # as the CLI would, through its own handle
    r = client.get(f"/groups/grp-a/{route}", headers=auth)
    assert r.status_code == 401


def test_page_takes_the_token_once_then_uses_a_cookie_scoped_to_the_group(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, _ = env
    token = group_token_store(settings).issue("grp-a").token
    r = client.get("/groups/grp-a/")
    assert r.status_code == 401
    assert "<form" in r.text
    r = client.get(f"/groups/grp-a/?token={token}")
    assert r.status_code == 303
    assert r.headers["location"] == "/groups/grp-a/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "Path=/groups/grp-a" in cookie
    assert "samesite=strict" in cookie.lower()
    r = client.get("/groups/grp-a/")
    assert r.status_code == 200
    assert 'data-base="/groups/grp-a"' in r.text
    svg = client.get("/groups/grp-a/wards.svg")
    assert svg.status_code == 200
    assert svg.text.count('class="ward ') == 12
    assert client.get("/groups/grp-b/wards.svg").status_code == 401  # cookie is grp-a's path


def test_a_wrong_token_on_the_page_shows_the_form_again(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, _, _ = env
    r = client.get("/groups/grp-a/?token=s115g_nope_nope")
    assert r.status_code == 401
    assert "unknown or has been revoked" in r.text


def test_valid_token_for_a_group_no_longer_configured_is_404(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, source = env
    token = group_token_store(settings).issue("grp-a").token
    source.subs = [s for s in source.subs if s.group != "grp-a"]
    r = client.get("/groups/grp-a/wards.svg", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404


def test_not_ready_is_503(env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, source = env
    token = group_token_store(settings).issue("grp-a").token
    source.is_ready = False
    r = client.get("/groups/grp-a/wards.svg", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 503
    assert "config not loaded" in r.json()["detail"]


def test_bad_parameters_are_400_or_422_naming_the_parameter(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, _ = env
    auth = {"Authorization": f"Bearer {group_token_store(settings).issue('grp-a').token}"}
    r = client.get("/groups/grp-a/export.csv?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z",
                   headers=auth)
    assert r.status_code == 400
    assert "must be after" in r.json()["detail"]
    r = client.get("/groups/grp-a/export.csv?from=yesterday&to=2026-03-01T00:00:00Z",
                   headers=auth)
    assert r.status_code == 422
    assert "from" in r.text
    r = client.get("/groups/grp-a/stream?kinds=everything", headers=auth)
    assert r.status_code == 400
    assert "kinds" in r.json()["detail"]
    r = client.get("/groups/grp-a/stream", headers={**auth, "Last-Event-ID": "zz"})
    assert r.status_code == 400
    assert "Last-Event-ID" in r.json()["detail"]


def test_static_assets_need_no_token_and_hold_no_group_data(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, _, _ = env
    assert client.get("/groups/_static/group.js").status_code == 200
    assert client.get("/groups/_static/app.py").status_code == 404
    assert client.get("/groups/_static/secret.json").status_code == 404


def test_a_page_view_is_an_audit_fact_naming_the_member_and_group(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, _ = env
    issued = group_token_store(settings).issue("grp-a", member="ann@watford.gov.uk")
    r = client.get("/groups/grp-a/", headers={"Authorization": f"Bearer {issued.token}"})
    assert r.status_code == 200
    assert "signed in as ann@watford.gov.uk" in r.text
    [fact] = FACTS.sent
    assert fact["kind"] == "access"
    assert fact["detail"]["action"] == "group.read"
    assert fact["detail"]["actor"] == "ann@watford.gov.uk@grp-a"
    assert fact["detail"]["member"] == "ann@watford.gov.uk"
    assert fact["detail"]["what"] == "page"
    assert fact["detail"]["token_id"] == issued.token_id


def test_when_the_read_cannot_be_audited_then_nothing_is_shown(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, _ = env
    issued = group_token_store(settings).issue("grp-a", member="bob")
    FACTS.broken = True
    r = client.get("/groups/grp-a/", headers={"Authorization": f"Bearer {issued.token}"})
    assert r.status_code == 503
    assert "audit" in r.json()["detail"]
    assert FACTS.sent == []


def test_a_revoked_member_is_refused_while_another_member_still_reads(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, settings, _ = env
    store = group_token_store(settings)
    ann = store.issue("grp-a", member="ann")
    bob = store.issue("grp-a", member="bob")
    store.revoke("grp-a", member="ann")
    assert client.get("/groups/grp-a/wards.svg",
                      headers={"Authorization": f"Bearer {ann.token}"}).status_code == 401
    assert client.get("/groups/grp-a/wards.svg",
                      headers={"Authorization": f"Bearer {bob.token}"}).status_code == 200


def test_offline_api_docs_load_nothing_from_elsewhere(
        env: tuple[TestClient, Settings, Source]) -> None:
    client, _, _ = env
    r = client.get("/groups/docs")
    assert r.status_code == 200
    assert "openapi.json" in r.text
    assert "http://" not in r.text
    assert "https://" not in r.text
    assert "<script src" not in r.text
    assert "<link" not in r.text
    spec = client.get("/groups/openapi.json").json()
    assert "/{group}/summary.json" in spec["paths"]
    assert "/{group}/export.csv" in spec["paths"]


def test_an_access_fact_chains_and_its_identity_is_recovered_from_the_chain() -> None:
    """The chainer dedupes by identity recomputed from the chained event: an access fact must
    come back with the id it was sent with, and two reads are two events."""
    from services.core.audit.chain import ChainWriter
    from services.core.audit.facts import access_fact, event_identity, fact_append_kwargs

    writer = ChainWriter()
    a = access_fact("grp-a", "ann@grp-a", "export.csv", detail={"records": 3})
    b = access_fact("grp-a", "ann@grp-a", "export.csv", detail={"records": 3})
    assert a["fact_id"] != b["fact_id"]  # each read is its own event
    event = writer.append(**fact_append_kwargs(a))
    assert event.kind == "access"
    assert event_identity(event) == a["fact_id"]
