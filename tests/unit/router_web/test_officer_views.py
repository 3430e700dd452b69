"""Every officer view through its route, on a real broker: the page's state (``OfficerPage``) is
injected into the routes (officer_routes.py) and each view renders what it names from the
durable topics, audited per view; issuing and revoking a credential works from the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.core.audit.key import ensure_audit_key
from services.core.config.publish import county_messages, publish
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.clients import ensure_topics
from services.core.kafka.topics import topic_specs
from services.router.web.officer import COOKIE, add_officer_page
from services.router.web.officer_tokens import officer_token_store
from tests.conftest import BrokerInfo

COUNTY = REPO_ROOT / "deploy" / "hertfordshire" / "county.yaml"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def signed_in(tmp_path: Path, kafka_broker: BrokerInfo, topic_prefix: str
              ) -> tuple[TestClient, list[dict[str, Any]]]:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap_servers=kafka_broker.bootstrap,
                        topic_prefix=topic_prefix,
                        kafka_idempotent_producer=kafka_broker.idempotent_producer)
    ensure_topics(settings, topic_specs(settings, ["grp-watford"], ["herts-police"]))
    publish(settings, county_messages(COUNTY), actor="test")
    ensure_audit_key(settings.resolved_audit_key_file())
    published: list[dict[str, Any]] = []
    app = FastAPI()
    add_officer_page(app, settings, published.extend)
    c = TestClient(app, base_url="http://hub")
    c.cookies.set(COOKIE, officer_token_store(settings).issue("dana").token)
    return c, published


@pytest.mark.kafka
def test_given_a_signed_in_officer_then_each_view_shows_its_tables_and_is_audited(
        signed_in: tuple[TestClient, list[dict[str, Any]]]) -> None:
    c, published = signed_in
    views = {"/officer/": ('id="feeds"', 'id="partners"', 'id="groups"', "Reviews due"),
             "/officer/reconcile?partner=herts-police": ('<option selected>herts-police',
                                                         'id="counts"', 'id="records"'),
             "/officer/dead-letters": ('id="letters"',),
             "/officer/protocols": ('id="protocols"',),
             "/officer/credentials": ('id="partner-credentials"', 'id="group-credentials"',
                                      'data-holder="grp-watford"'),
             "/officer/audit": ('id="verify"',)}
    for path, marks in views.items():
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        for mark in marks:
            assert mark in r.text, (path, mark)
    assert [f["detail"]["subject"] for f in published] == [
        "view:status", "view:reconcile", "view:dead-letters", "view:protocols",
        "view:credentials", "view:audit"]
    csv = c.get("/officer/reconcile.csv", params={"partner": "herts-police",
                                                   "start": "2026-01-01", "end": "2026-02-01"})
    assert csv.status_code == 200
    assert csv.headers["content-disposition"].endswith(
        'filename="reconciliation-herts-police-2026-01-01-2026-02-01.csv"')
    verdict = c.post("/officer/audit/verify")
    assert 'id="verdict" class="ok"' in verdict.text


@pytest.mark.kafka
def test_given_a_signed_in_officer_then_a_credential_is_issued_and_revoked_from_the_page(
        signed_in: tuple[TestClient, list[dict[str, Any]]]) -> None:
    c, published = signed_in
    r = c.post("/officer/credentials/issue", content="kind=group&holder=grp-watford",
               headers=FORM)
    assert r.status_code == 200
    assert 'id="issued"' in r.text
    token_id = published[-1]["detail"]["token_id"]
    assert published[-1]["detail"]["subject"] == "group.credential.issued"
    assert f'data-token-id="{token_id}"' in r.text
    r = c.post("/officer/credentials/revoke", headers=FORM,
               content=f"kind=group&holder=grp-watford&token_id={token_id}")
    assert 'id="revoked"' in r.text
    assert published[-1]["detail"]["token_ids"] == [token_id]
    assert f'data-token-id="{token_id}"' not in r.text
    assert c.post("/officer/credentials/issue", content="kind=group&holder=grp-nowhere",
                  headers=FORM).status_code == 404
    assert c.post("/officer/credentials/issue", content="kind=officer&holder=dana",
                  headers=FORM).status_code == 400
