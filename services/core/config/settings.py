"""Settings for every service and the CLI, parsed once at start-up and passed down.

All names carry the ``S115HUB_`` prefix. The one exception is ``KAFKA_BOOTSTRAP_SERVERS``, accepted
as an alias because operators of Apache Kafka expect it; other libraries' names (``BROKER_URL``
and friends) are never read, so they cannot override ours by accident.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]


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
    #: The SASL password read from a file (a Kubernetes or compose secret), so it never sits in
    #: the environment; used when ``kafka_sasl_password`` is not set.
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    #: Apache Kafka supports idempotent aiokafka producers; the embedded tansu broker does not
    #: (InitProducerId fails), so the embedded launcher turns this off. acks=all stays on.
    kafka_idempotent_producer: bool = True
    #: tansu waits the full rebalance timeout on a first join, so keep it short.
    kafka_rebalance_timeout_ms: int = 3000
    kafka_session_timeout_ms: int = 10000
    #: How long the broker may hold a fetch that finds nothing (the record path's consumers;
    #: config and the audit chain use longer waits). tansu holds empty fetches: 20 ms kept an
    #: idle hub's broker at ~0.3 of a core, 50 ms adds at most ~30 ms per hop (measured, issue 12).
    kafka_fetch_max_wait_ms: int = 50

    topic_prefix: str = "s115"
    topic_partitions: int = 3
    topic_replication: int = 1
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    #: How long a service waits at start-up for the broker to answer before it gives up (its
    #: supervisor restarts it); shape errors stop it at once.
    startup_broker_wait_s: float = 60.0
    #: How long `s115hub up` waits for every service to answer /readyz.
    up_ready_timeout_s: float = 180.0

    state_dir: Path = REPO_ROOT / ".s115hub"
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    boundaries_dir: Path = REPO_ROOT / "deploy" / "data" / "boundaries"
    config_dir: Path = REPO_ROOT / "deploy" / "hertfordshire"

    #: The CLI's environment file (default: <state_dir>/s115hub.env, written by `up`). The CLI
    #: reads it from the environment before parsing these settings; declared here so every
    #: S115HUB_ name is in one place.
    env_file: Path | None = None
    #: CLI: show the traceback of a failure instead of its one line.
    debug: bool = False

    host: str = "127.0.0.1"
    #: The broker `s115hub up` starts itself (not used with KAFKA_BOOTSTRAP_SERVERS).
    broker_port: int = 19092
    ingest_port: int = 8115
    depersonalise_port: int = 8116
    router_port: int = 8117

    #: Ward counts on a group's web page below this are shown as "<N" (the detector's default
    #: for published alert counts, so the map and the alerts agree).
    group_page_suppress_below: int = 10
    #: Chromium used to print tasking packs to PDF (default: ``chromium`` on the PATH).
    chromium_path: str | None = None

    batch_max_records: int = 2000
    #: Stage runner (services/core/kafka/stage_runner.py): a record whose handling takes longer than
    #: this is dead-lettered (reason kind "budget") and its outputs dropped.
    stage_record_budget_s: float = 2.0
    max_body_bytes: int = 5_000_000
    max_batch_records: int = 10_000
    #: Ingest front door (issue 4). Requests per second each partner may make (token bucket,
    #: per ingest process), and the burst it may spend at once.
    ingest_rate_per_partner: float = 50.0
    ingest_rate_burst: int = 100
    #: How long ingest waits for the broker to acknowledge before answering 503.
    ingest_ack_timeout_ms: int = 10_000
    ingest_retry_after_s: int = 5
    #: Idempotency-Key responses kept per ingest process (entries, seconds).
    ingest_idempotency_entries: int = 10_000
    ingest_idempotency_ttl_s: int = 24 * 3600
    #: Bytes of stored Idempotency-Key answers per partner (oldest forgotten first); an answer
    #: bigger than a quarter of it is not stored (a retry is then processed again, harmlessly:
    #: hub record ids are deterministic).
    ingest_idempotency_bytes_per_partner: int = 4_000_000
    #: Bytes of per-record rejection detail in one batch answer; past it, further rejected
    #: records get their first problem only and a note, so an answer stays bounded.
    ingest_rejection_bytes_per_batch: int = 256_000
    #: Recently acknowledged records remembered so an identical resend is not written to the raw
    #: topic again (0 turns it off; downstream dedupes by hub record id regardless).
    ingest_dedupe_window: int = 100_000
    #: Event times (occurred_at, ...) later than the hub's clock plus this are refused: the
    #: clock skew allowed between a partner's systems and the hub.
    ingest_future_skew_s: float = 300.0
    #: Event times before this date are refused as implausible (a mistyped year, an epoch 0).
    ingest_time_floor: date = date(2000, 1, 1)
    #: Consume the per-partner Kafka inbound topics (s115.inbound.<partner>).
    ingest_inbound: bool = True

    #: The pinned officer trust anchors (services/core/crypto/officer_trust.py), mounted
    #: read-only by the deployment; default ``<state_dir>/officer-keys.yaml``. Officer keys on
    #: the config topic are never trusted on their own.
    officer_keys_file: Path | None = None

    #: The hub's Ed25519 key that signs audit checkpoints and exported bundles (PEM, mode 0600);
    #: the public half sits next to it as ``<name>.pub``.
    audit_key_file: Path | None = None
    #: A checkpoint is signed after this many new events, or this many seconds after the first
    #: unsigned one, whichever comes first.
    audit_checkpoint_every: int = 500
    audit_checkpoint_seconds: float = 10.0
    #: Record ids the router remembers per group to refuse redeliveries (services/router/
    #: ledger.py says what the bound covers). ~124 bytes each. Must exceed a few batches, so a
    #: crashed batch re-read after a restart is always recognised.
    router_ledger_ids_per_group: int = 200_000

    @model_validator(mode="after")
    def _ledger_covers_a_crashed_batch(self) -> Settings:
        # Four batches: the router's own, depersonalise's and ingest's re-emitted ones, margin.
        if self.router_ledger_ids_per_group < 4 * self.batch_max_records:
            raise ValueError(
                f"router_ledger_ids_per_group ({self.router_ledger_ids_per_group}) must be at "
                f"least 4 x batch_max_records ({4 * self.batch_max_records}) so a redelivered "
                "batch is always recognised")
        return self

    def resolved_audit_key_file(self) -> Path:
        return self.audit_key_file or self.state_dir / "audit-key.pem"

    def resolved_sasl_password(self) -> str | None:
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return self.kafka_sasl_password_file.read_text(encoding="utf-8").strip()
        return None

    def resolved_officer_keys_file(self) -> Path:
        """The setting; else ``officer-keys.yaml`` beside county.yaml (production: the county
        directory the officers keep); else in the state directory (the demo writes it there)."""
        if self.officer_keys_file:
            return self.officer_keys_file
        beside = self.config_dir / "officer-keys.yaml"
        return beside if beside.exists() else self.state_dir / "officer-keys.yaml"

    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.state_dir / "master.key"
