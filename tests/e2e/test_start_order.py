"""Start-up order does not matter: a service started by hand before anything else creates every
topic with its declared shape (so ingest becomes ready once the config is applied), and a service
that finds a topic of the wrong shape refuses to start with one clear line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from demo.bootstrap import bootstrap
from services.core.config.publish import publish
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.broker import free_port
from tests.conftest import BrokerInfo
from tests.e2e.cli_support import clean_env

HERTS = REPO_ROOT / "deploy" / "hertfordshire"


def service_env(broker: BrokerInfo, prefix: str, state: Path, port: int) -> dict[str, str]:
    return clean_env(S115HUB_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                     S115HUB_KAFKA_IDEMPOTENT_PRODUCER=str(broker.idempotent_producer),
                     S115HUB_TOPIC_PREFIX=prefix, S115HUB_STATE_DIR=str(state),
                     S115HUB_CONFIG_DIR=str(HERTS), S115HUB_INGEST_PORT=str(port),
                     S115HUB_MASTER_KEY="A" * 43 + "=")


def test_given_ingest_started_first_then_config_applied_later_then_ingest_becomes_ready(
        kafka_broker: BrokerInfo, topic_prefix: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    env = service_env(kafka_broker, topic_prefix, tmp_path, port)
    proc = subprocess.Popen([sys.executable, "-m", "services.ingest"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if r.json()["detail"] == "config not loaded":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()[0]
        # The config as the demo applies it: the unpinned example county cannot go through
        # `config apply`, which refuses a county that pins no officer key file (issue 13).
        for name, value in env.items():
            if name.startswith(("S115HUB_", "KAFKA_")):
                monkeypatch.setenv(name, value)
        boot = bootstrap(tmp_path / "officer", HERTS)
        assert publish(Settings(), boot.messages) == len(boot.messages)
        while time.monotonic() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                break
            time.sleep(0.3)
        else:
            raise AssertionError("ingest never became ready after `config apply`")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_given_a_config_topic_with_four_partitions_then_a_service_refuses_to_start(
        kafka_broker: BrokerInfo, topic_prefix: str, tmp_path: Path) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    try:
        admin.create_topics([NewTopic(f"{topic_prefix}.config", 4, 1)])
    finally:
        admin.close()
    env = service_env(kafka_broker, topic_prefix, tmp_path, free_port())
    done = subprocess.run([sys.executable, "-m", "services.depersonalise"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert line.startswith("depersonalise: refusing to start: topic "
                           f"{topic_prefix}.config has 4 partitions, must have exactly 1")
