"""Officer page access without a broker (issue 16): nothing without an officer token, sign-in
audited before the cookie is set, cross-site posts refused, no audit means nothing done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.config.settings import Settings
from services.router.web.officer import COOKIE, add_officer_page
from services.router.web.officer_tokens import officer_token_store


def client(tmp_path: Path, published: list[dict[str, Any]], *, fail: bool = False
           ) -> tuple[TestClient, str]:
    settings = Settings(state_dir=tmp_path)
    token = officer_token_store(settings).issue("dana").token

    def publish(facts: list[dict[str, Any]]) -> None:
        if fail:
            raise ConnectionError("broker down")
        published.extend(facts)

    app = FastAPI()
    add_officer_page(app, settings, publish)
    return TestClient(app, base_url="http://hub"), token


@pytest.mark.parametrize("path", ["/officer/reconcile", "/officer/dead-letters",
                                  "/officer/protocols", "/officer/credentials", "/officer/audit",
                                  "/officer/reconcile.csv?partner=p&start=2026-01-01&end=2026-02-01"])
def test_given_no_officer_token_then_every_view_is_refused(tmp_path: Path, path: str) -> None:
    c, _ = client(tmp_path, [])
    assert c.get(path).status_code == 401
    assert c.get(path, cookies={COOKIE: "s115o_dead_beef"}).status_code == 401


def test_given_a_group_token_then_it_does_not_open_the_officer_page(tmp_path: Path) -> None:
    from services.router.web.tokens import group_token_store

    c, _ = client(tmp_path, [])
    group = group_token_store(Settings(state_dir=tmp_path)).issue("grp-watford").token
    r = c.post("/officer/sign-in", content=f"token={group}",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert 'id="error"' in r.text
    assert COOKIE not in r.cookies


def test_given_the_officer_token_then_sign_in_is_audited_and_sets_a_strict_cookie(
        tmp_path: Path) -> None:
    published: list[dict[str, Any]] = []
    c, token = client(tmp_path, published)
    r = c.post("/officer/sign-in", content=f"token={token}", follow_redirects=False,
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/officer" in cookie
    assert [(f["detail"]["action"], f["detail"]["actor"]) for f in published] == [
        ("officer.signed_in", "dana@officer-page")]


def test_given_a_cross_site_post_then_it_is_refused(tmp_path: Path) -> None:
    c, token = client(tmp_path, [])
    r = c.post("/officer/sign-in", content=f"token={token}",
               headers={"Content-Type": "application/x-www-form-urlencoded",
                        "Origin": "http://evil.example"})
    assert r.status_code == 403


def test_given_the_audit_chain_refuses_then_the_officer_is_not_signed_in(tmp_path: Path) -> None:
    c, token = client(tmp_path, [], fail=True)
    r = c.post("/officer/sign-in", content=f"token={token}", follow_redirects=False,
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 503
    assert COOKIE not in r.cookies
