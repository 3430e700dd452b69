"""``s115hub group token issue|list|revoke`` against the store the router reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.settings import REPO_ROOT, Settings
from services.router.web.tokens import group_token_store


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("S115HUB_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("S115HUB_CONFIG_DIR", str(REPO_ROOT / "deploy" / "hertfordshire"))
    return Settings()


def test_issue_list_revoke(env: Settings) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["group", "token", "issue", "grp-watford"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[0].rsplit(" ", 1)[-1]
    store = group_token_store(env)
    assert store.authenticate(token) == "grp-watford"
    listing = runner.invoke(app, ["group", "token", "list"])
    assert "grp-watford" in listing.stdout
    assert token not in listing.stdout
    assert "live" in listing.stdout
    r = runner.invoke(app, ["group", "token", "revoke", "grp-watford"])
    assert r.exit_code == 0, r.output
    assert store.authenticate(token) is None
    assert "revoked" in runner.invoke(app, ["group", "token", "list"]).stdout


def test_issuing_for_a_group_not_in_the_county_is_refused_unless_forced(env: Settings) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["group", "token", "issue", "grp-nowhere"])
    assert r.exit_code != 0
    assert "grp-nowhere" in r.output
    assert "not a group" in r.output
    assert group_token_store(env).entries() == {}
    r = runner.invoke(app, ["group", "token", "issue", "grp-nowhere", "--force"])
    assert r.exit_code == 0, r.output


def test_revoking_when_nothing_is_live_says_so(env: Settings) -> None:
    r = CliRunner().invoke(app, ["group", "token", "revoke", "grp-watford"])
    assert r.exit_code == 1
    assert "no live token for 'grp-watford'" in r.output
