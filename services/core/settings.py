"""Settings for every service and the CLI, parsed once at start-up and passed down.

All names carry the ``S115HUB_`` prefix. The one exception is ``KAFKA_BOOTSTRAP_SERVERS``, accepted
as an alias because operators of Apache Kafka expect it; faust's own names (``BROKER_URL`` and
friends) are never read, so they cannot override ours by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S115HUB_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("S115HUB_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    #: Apache Kafka supports idempotent aiokafka producers; the embedded tansu broker does not
    #: (InitProducerId fails), so the embedded launcher turns this off. acks=all stays on.
    kafka_idempotent_producer: bool = True
    #: tansu waits the full rebalance timeout on a first join, so keep it short.
    kafka_rebalance_timeout_ms: int = 3000
    kafka_session_timeout_ms: int = 10000

    topic_prefix: str = "s115"
    topic_partitions: int = 3
    topic_replication: int = 1
    raw_retention_ms: int = 7 * 24 * 3600 * 1000

    state_dir: Path = REPO_ROOT / ".s115hub"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    boundaries_dir: Path = REPO_ROOT / "deploy" / "data" / "boundaries"
    config_dir: Path = REPO_ROOT / "deploy" / "hertfordshire"

    host: str = "127.0.0.1"
    ingest_port: int = 8115
    depersonalise_port: int = 8116
    router_port: int = 8117

    batch_max_records: int = 2000
    max_body_bytes: int = 5_000_000
    max_batch_records: int = 10_000

    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.state_dir / "master.key"
