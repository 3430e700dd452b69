"""A whole hub (the three services as processes) on the session broker, per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.cluster import LocalHub
from services.core.config.settings import REPO_ROOT
from tests.conftest import BrokerInfo


def start_hub(broker: BrokerInfo, state: Path, config_dir: Path) -> LocalHub:
    hub = LocalHub(state, config_dir, bootstrap_servers=broker.bootstrap,
                   idempotent_producer=broker.idempotent_producer, log_dir=state / "logs")
    try:
        hub.start(topic_prefix=f"e{uuid.uuid4().hex[:10]}")
    except Exception:
        hub.stop()
        for log in sorted((state / "logs").glob("*.log")):
            print(f"==> {log}\n{log.read_text()[-3000:]}")
        raise
    return hub


@pytest.fixture(scope="module")
def herts_hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LocalHub]:
    hub = start_hub(kafka_broker, tmp_path_factory.mktemp("herts"),
                    REPO_ROOT / "deploy" / "hertfordshire")
    yield hub
    hub.stop()
