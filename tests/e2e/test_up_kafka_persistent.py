"""``s115hub up --demo --broker kafka``: the hub on a local Apache Kafka whose data, and the hub's
keys and state, survive a restart of the whole thing (Ctrl-C, then ``up`` again on the same
directory). The demo mode is used because it issues its own partner keys; production mode runs
the same broker code with the officers' own config."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka import local as kafka_local
from services.core.kafka.topics import topics_for
from tests.kafka_read import read_topic, wait_for

pytestmark = [pytest.mark.own_broker, pytest.mark.slow, pytest.mark.kafka]


@pytest.fixture(autouse=True)
def _needs_local_kafka() -> None:
    if os.environ.get("S115HUB_TEST_BROKER", "").lower() == "tansu":
        pytest.skip("up --broker kafka needs Apache Kafka; S115HUB_TEST_BROKER=tansu")
    if not kafka_local.available():
        pytest.skip("needs Java 17+ and the Apache Kafka distribution")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Up:
    """``s115hub up --broker kafka`` as a child process, its output collected."""

    def __init__(self, state: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("KAFKA_BOOTSTRAP_SERVERS", "S115HUB_KAFKA_BOOTSTRAP_SERVERS")}
        self.proc = subprocess.Popen(
            # --demo: generated credentials (demo-api-keys.json) on a persistent broker; without
            # it `up` is production mode and issues none (issue 16).
            [sys.executable, "-m", "services.cli.main", "up", "--demo", "--rate", "1",
             "--broker", "kafka", "--state-dir", str(state)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # A test run started in the background inherits SIGINT ignored, and so would `up`;
            # Ctrl-C is what is under test, so give it the default disposition.
            preexec_fn=_default_sigint)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "Ctrl-C stops everything" in line:
                self.ready.set()

    def wait_ready(self) -> tuple[str, str]:
        """(bootstrap servers, ingest URL) from the start-up lines."""
        assert self.ready.wait(240), "up did not become ready:\n" + "\n".join(self.lines[-30:])
        text = "\n".join(self.lines)
        broker = re.search(r"; broker (\S+)", text)
        ingest = re.search(r"ingest API\s+(http://\S+?)/v1/", text)
        assert broker, text
        assert ingest, text
        return broker.group(1), ingest.group(1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=90)
        assert rc == 0, "\n".join(self.lines[-30:])


def post_one(ingest: str, api_keys: dict[str, str], seed: int) -> str:
    gen = Generator(AreaIndex.load(Settings().boundaries_dir), seed=seed)
    ward, rec = gen.record("police")
    partner = gen.partner_for("police", ward)
    r = httpx.post(f"{ingest}/v1/feeds/police/ndjson", content=json.dumps(rec),
                   headers={"X-API-Key": api_keys[partner]}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["accepted"][0]["hub_record_id"])


def shared_ids(bootstrap: str) -> set[str]:
    s = Settings(kafka_bootstrap_servers=bootstrap)
    return {m.key.decode() for m in read_topic(s, topics_for(s).shared)}


def test_given_up_broker_kafka_restarted_then_records_keys_and_partner_credentials_survive(
        tmp_path: Path) -> None:
    state = tmp_path / "hub"
    up = Up(state)
    try:
        bootstrap, ingest = up.wait_ready()
        keys_before = json.loads((state / "demo-api-keys.json").read_text())
        first = post_one(ingest, keys_before, seed=1)
        wait_for(lambda: shared_ids(bootstrap), lambda ids: first in ids, timeout=120,
                 what="the first record on the shared topic")
    finally:
        up.stop()
    master = (state / "master.key").read_bytes()
    audit_key = (state / "audit-key.pem").read_bytes()

    up = Up(state)
    try:
        bootstrap2, ingest = up.wait_ready()
        assert bootstrap2 == bootstrap, "the restarted Kafka should keep its ports"
        # The broker's data survived: the first run's record is still there, before any new one.
        assert first in shared_ids(bootstrap2)
        # The hub's keys survived, so pseudonyms and the audit chain continue.
        assert (state / "master.key").read_bytes() == master
        assert (state / "audit-key.pem").read_bytes() == audit_key
        # A partner's key issued on the first run still works.
        second = post_one(ingest, keys_before, seed=2)
        wait_for(lambda: shared_ids(bootstrap2), lambda ids: {first, second} <= ids,
                 timeout=120, what="both records on the shared topic")
    finally:
        up.stop()
    assert (state / "kafka" / "node-1" / "data" / "meta.properties").is_file()
