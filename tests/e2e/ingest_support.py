"""Ingest in-process (FastAPI TestClient, lifespan and all) on a real broker, with the county's
config on the config topic and partner keys issued, for the tests of issue 4."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from demo.bootstrap import Bootstrap, bootstrap
from services.core.config.publish import publish
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.clients import ensure_topics
from services.core.kafka.topics import topic_specs
from services.ingest.app import make_app

HERTS = REPO_ROOT / "deploy" / "hertfordshire"


@dataclass
class Ingest:
    client: TestClient
    settings: Settings
    boot: Bootstrap

    def key(self, partner: str) -> dict[str, str]:
        return {"X-API-Key": self.boot.api_keys[partner]}

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix


def hub_settings(bootstrap_servers: str, idempotent: bool, state: Path,
                 **overrides: Any) -> tuple[Settings, Bootstrap]:
    settings = Settings(kafka_bootstrap_servers=bootstrap_servers, state_dir=state,
                        config_dir=HERTS, topic_prefix=f"i{uuid.uuid4().hex[:10]}",
                        kafka_idempotent_producer=idempotent, **overrides)
    boot = bootstrap(state, HERTS)
    ensure_topics(settings, topic_specs(settings, [g.id for g in boot.county.groups],
                                        [p.id for p in boot.county.partners]))
    publish(settings, boot.messages)
    return settings, boot


@contextmanager
def running_ingest(settings: Settings, boot: Bootstrap) -> Iterator[Ingest]:
    with TestClient(make_app(settings), raise_server_exceptions=False) as client:
        yield Ingest(client, settings, boot)


def police_record(source_id: str, **extra: Any) -> dict[str, Any]:
    return {"source_id": source_id, "category": "burglary", "occurred_at": "2024-05-01T21:30:00Z",
            "location": {"lat": 51.75, "lon": -0.34}, **extra}
