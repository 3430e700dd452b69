"""Broker down: ingest answers 503 with Retry-After and acknowledges nothing; after the broker
comes back (empty: tansu keeps topics in memory, so ingest must re-provision them) the retried
records arrive once. Uses its own embedded broker, never the session one. About 25 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from services.core.kafka.broker import EmbeddedBroker, free_port
from tests.e2e.ingest_support import hub_settings, police_record, running_ingest
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.own_broker, pytest.mark.kafka, pytest.mark.slow]


def test_given_broker_down_then_503_nothing_acked_and_retry_after_restart_arrives_once(
        tmp_path: Path) -> None:
    port = free_port()
    broker = EmbeddedBroker(port, tmp_path / "tansu.log").start()
    try:
        settings, boot = hub_settings(broker.bootstrap, False, tmp_path / "state",
                                      ingest_ack_timeout_ms=3000, ingest_retry_after_s=2,
                                      ingest_inbound=False)
        raw = f"{settings.topic_prefix}.raw.police"
        batch = "\n".join(json.dumps(police_record(f"down-{i}")) for i in range(5))
        with running_ingest(settings, boot) as ing:
            url, h = "/v1/feeds/police/ndjson", ing.key("herts-police")
            assert ing.client.post(url, content=json.dumps(police_record("up-0")),
                                   headers=h).status_code == 200
            broker.stop()

            t0 = time.monotonic()
            down = ing.client.post(url, content=batch, headers=h)
            first_503_s = time.monotonic() - t0
            assert down.status_code == 503, down.text
            assert down.headers["Retry-After"] == "2"
            assert "nothing in this request was acknowledged" in down.json()["detail"]
            t0 = time.monotonic()
            again = ing.client.post(url, content=batch, headers=h)
            second_503_s = time.monotonic() - t0
            assert again.status_code == 503, again.text
            print(f"503 after {first_503_s:.1f}s, then after {second_503_s:.1f}s")

            broker = EmbeddedBroker(port, tmp_path / "tansu.log").start()
            # The partner retries as told until the hub acknowledges.
            done = wait_for(lambda: ing.client.post(url, content=batch, headers=h),
                            lambda r: r.status_code == 200, timeout=60, interval=2,
                            what="the retried batch to be acknowledged")
            assert done.json()["counts"] == {"accepted": 5, "rejected": 0}
            ids = wait_for(lambda: [r["envelope"]["source_id"] for r in read_json(settings, raw)],
                           lambda got: len([i for i in got if i.startswith("down-")]) >= 5,
                           timeout=30, what="retried records on the raw topic")
        got = sorted(i for i in ids if i.startswith("down-"))
        assert got == [f"down-{i}" for i in range(5)], f"not exactly once: {got}"
    finally:
        broker.stop()
