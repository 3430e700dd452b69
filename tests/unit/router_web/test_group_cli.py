"""``s115hub group token issue|list|revoke`` against the store the router reads."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.topics import topics_for
from services.router.web.tokens import group_token_store
from tests.conftest import BrokerInfo
from tests.kafka_read import read_json, wait_for


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


@pytest.mark.kafka
def test_members_get_their_own_tokens_and_issue_and_revoke_are_audited(
        env: Settings, kafka_broker: BrokerInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap)
    monkeypatch.setenv("S115HUB_TOPIC_PREFIX", f"m{uuid.uuid4().hex[:10]}")
    settings = Settings()
    runner = CliRunner()
    tokens = {}
    for member in ("ann@watford.gov.uk", "bob@watford.gov.uk"):
        r = runner.invoke(app, ["group", "member", "add", "grp-watford", member])
        assert r.exit_code == 0, r.output
        tokens[member] = r.stdout.strip().splitlines()[0].rsplit(" ", 1)[-1]
    store = group_token_store(settings)
    ann = store.identify(tokens["ann@watford.gov.uk"])
    assert ann is not None
    assert (ann.holder, ann.member) == ("grp-watford", "ann@watford.gov.uk")
    listing = runner.invoke(app, ["group", "member", "list", "grp-watford"]).stdout
    assert "ann@watford.gov.uk" in listing
    assert "bob@watford.gov.uk" in listing
    assert tokens["ann@watford.gov.uk"] not in listing
    r = runner.invoke(app, ["group", "member", "revoke", "grp-watford", "ann@watford.gov.uk"])
    assert r.exit_code == 0, r.output
    assert store.identify(tokens["ann@watford.gov.uk"]) is None
    assert store.identify(tokens["bob@watford.gov.uk"]) is not None
    # Member changes are officer (kind=config) facts: they travel on the officer facts topic.
    facts = wait_for(lambda: read_json(settings, topics_for(settings).audit_officer),
                     lambda fs: len(fs) >= 3, timeout=30, what="the member facts")
    actions = [(f["detail"]["action"], f["detail"]["member"]) for f in facts]
    # The topic was auto-created here (no provisioning), so it may have several partitions.
    assert sorted(actions) == [("group.member.issued", "ann@watford.gov.uk"),
                               ("group.member.issued", "bob@watford.gov.uk"),
                               ("group.member.revoked", "ann@watford.gov.uk")]


def test_a_member_name_with_odd_characters_is_refused_in_one_line(env: Settings) -> None:
    r = CliRunner().invoke(app, ["group", "member", "add", "grp-watford", "ann smith; rm"])
    assert r.exit_code != 0
    assert "MEMBER" in r.output
    assert "Traceback" not in r.output
    assert group_token_store(env).entries() == {}
