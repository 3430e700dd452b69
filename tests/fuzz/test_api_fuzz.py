"""Schemathesis fuzzing of the ingest HTTP API from its own OpenAPI document, served by uvicorn
in-process with a real broker behind it (the session broker). No 5xx, responses as documented
(status, content type, headers, body schema), every refusal answered with a reason.

Modest example counts keep CI fast (about 40 s); the closing note of issue 4 gives the figures.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.core.kafka.broker import free_port
from services.ingest.app import make_app
from tests.conftest import BrokerInfo
from tests.e2e.ingest_support import hub_settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
EXAMPLES = 100
STATS: Counter[str] = Counter()


class Server:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()),
                                       daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("ingest did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="module")
def ingest_url(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[str, dict[str, str]]]:
    s, boot = hub_settings(kafka_broker.bootstrap, kafka_broker.idempotent_producer,
                           Path(tmp_path_factory.mktemp("fuzz")), ingest_rate_per_partner=0,
                           ingest_inbound=False, ingest_ack_timeout_ms=5000)
    port = free_port()
    with Server(make_app(s), port):
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        yield url, boot.api_keys
    print(f"\nAPI fuzz: {sum(v for k, v in STATS.items() if k.startswith('status'))} requests; "
          + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))


@pytest.fixture(scope="module")
def api_schema(ingest_url: tuple[str, dict[str, str]]) -> Any:
    return schemathesis.openapi.from_url(f"{ingest_url[0]}/openapi.json")


@schemathesis.serializer("application/x-ndjson", "text/csv")
def _text_body(ctx: Any, value: Any) -> bytes:
    """Batch bodies are documented as strings; negative generation may hand us anything else."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.encode("utf-8", "surrogatepass")


PARTNER = {"police": "herts-police", "fire": "herts-fire", "health": "enherts-nhs",
           "council": "watford-bc"}
OPERATIONS = ["POST /v1/feeds/{feed}/records", "POST /v1/feeds/{feed}/ndjson",
              "POST /v1/feeds/{feed}/csv", "GET /healthz", "GET /readyz"]
CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def check(case: Any, url: str, keys: dict[str, str]) -> None:
    # Authenticated as the partner that owns the feed, so bodies reach validation.
    feed = str((case.path_parameters or {}).get("feed", "police"))
    key = keys[PARTNER.get(feed, "herts-police")]
    response = case.call_and_validate(base_url=url, headers={"X-API-Key": key}, checks=CHECKS)
    status = response.status_code
    STATS[f"status_{status}"] += 1
    assert status < 500, f"{status}: {response.text[:500]}"
    if status >= 400 and case.path.startswith("/v1/"):
        body = response.json()
        assert body["detail"], "a refusal must say why"
        STATS["refused_with_reason"] += 1
        for err in body.get("errors", []):
            assert err["reason"], f"error without a reason: {body}"
    if case.path.endswith(("/ndjson", "/csv")) and status == 200:
        out = response.json()
        STATS["batch_records_rejected"] += len(out["rejected"])
        STATS["batch_records_accepted"] += len(out["accepted"])
        assert all(r["errors"] and all(e["reason"] for e in r["errors"])
                   for r in out["rejected"])


@pytest.mark.parametrize("label", OPERATIONS)
def test_given_generated_requests_then_no_5xx_and_every_answer_as_documented(
        label: str, api_schema: Any, ingest_url: tuple[str, dict[str, str]]) -> None:
    url, keys = ingest_url
    ops = [r.ok() for r in api_schema.get_all_operations()]
    op = next(o for o in ops if f"{o.method.upper()} {o.path}" == label)
    strategies = [op.as_strategy(GenerationMode.POSITIVE)]
    if op.body or op.path_parameters:
        strategies.append(op.as_strategy(GenerationMode.NEGATIVE))

    @given(case=st.one_of(strategies))
    @settings(max_examples=EXAMPLES if label.startswith("POST") else 5, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        check(case, url, keys)

    run()
