"""A whole hub on this machine: broker (embedded tansu, or local Apache Kafka with ``kafka_dir``,
unless one is given), topics, config, and the three services as child processes. Used by
``s115hub up`` and by the end-to-end tests, so the tests exercise exactly what a newcomer runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demo.bootstrap import Bootstrap, bootstrap
from services.core.config.publish import publish
from services.core.config.settings import Settings
from services.core.errors import HubError
from services.core.kafka.broker import EmbeddedBroker, free_port
from services.core.kafka.local import LocalKafka
from services.core.kafka.topics import provision_topics, topic_specs
from services.core.ops.stop_signals import die_with_parent

SERVICES = ("ingest", "depersonalise", "router")


@dataclass
class LocalHub:
    state_dir: Path
    config_dir: Path
    bootstrap_servers: str | None = None  # None: start the embedded broker
    #: aiokafka's idempotent producer is refused by tansu; keep it for real Kafka.
    idempotent_producer: bool | None = None
    protocols_dir: Path | None = None
    log_dir: Path | None = None
    #: Run a local Apache Kafka whose data lives here (kept across restarts) instead of tansu.
    kafka_dir: Path | None = None
    #: Replication factor of the hub's topics (3 on a three-broker cluster).
    topic_replication: int = 1
    broker: EmbeddedBroker | LocalKafka | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    boot: Bootstrap | None = None
    settings: Settings | None = None
    #: Further S115HUB_* settings for the services (tests turn single knobs with it).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: True: generate officer keys, sign the protocols and issue credentials (the demo and the
    #: tests). False (production): publish the config directory as the officers signed it.
    demo: bool = True
    #: Ports for the services (production: fixed from settings); None picks free ones.
    fixed_ports: dict[str, int] | None = None
    #: The embedded broker's port (None: a free one).
    broker_port: int | None = None
    #: Which broker to start when none is given: "embedded" (tansu, in memory) or "kafka"
    #: (local Apache Kafka with its data in ``kafka_dir``, default <state>/kafka). The one seam
    #: for the broker choice.
    broker_kind: str = "embedded"
    #: Production: keep the operator's S115HUB_* settings (SASL, TLS, limits) for the services.
    pass_settings_through: bool = False
    #: `up`: children get SIGTERM if this process is SIGKILLed (services/core/ops/stop_signals.py).
    children_die_with_parent: bool = False

    def env(self) -> dict[str, str]:
        assert self.settings is not None
        env = {k: v for k, v in os.environ.items()
               if self.pass_settings_through or not k.startswith("S115HUB_")}
        env.update(self.hub_env())
        for name in ("KAFKA_BOOTSTRAP_SERVERS",):
            env.pop(name, None)
        env.update(self.extra_env)
        return env

    def hub_env(self) -> dict[str, str]:
        """The settings that make a process part of this hub (also the CLI's env file)."""
        assert self.settings is not None
        return {
            "S115HUB_KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "S115HUB_KAFKA_IDEMPOTENT_PRODUCER": str(self.settings.kafka_idempotent_producer),
            "S115HUB_STATE_DIR": str(self.state_dir),
            "S115HUB_CONFIG_DIR": str(self.config_dir),
            "S115HUB_TOPIC_PREFIX": self.settings.topic_prefix,
            "S115HUB_TOPIC_REPLICATION": str(self.settings.topic_replication),
            "S115HUB_INGEST_PORT": str(self.ports["ingest"]),
            "S115HUB_DEPERSONALISE_PORT": str(self.ports["depersonalise"]),
            "S115HUB_ROUTER_PORT": str(self.ports["router"]),
        }

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start_broker(self) -> str:
        if self.bootstrap_servers:
            return self.bootstrap_servers
        if self.kafka_dir is not None or self.broker_kind == "kafka":
            kafka = LocalKafka(self.kafka_dir or self.state_dir / "kafka")
            self.broker = kafka
            kafka.start()
            return kafka.bootstrap()
        log = (self.log_dir / "broker.log") if self.log_dir else None
        if self.broker_kind != "embedded":
            raise HubError(f"unknown broker {self.broker_kind!r}: embedded or kafka")
        tansu = EmbeddedBroker(self.broker_port or free_port(), log,
                               die_with_parent=self.children_die_with_parent)
        self.broker = tansu
        tansu.start()
        return tansu.bootstrap

    def start(self, topic_prefix: str = "s115", *, wait: float = 60.0) -> LocalHub:
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        servers = self.start_broker()
        self.settings = Settings(
            kafka_bootstrap_servers=servers, state_dir=self.state_dir,
            config_dir=self.config_dir, topic_prefix=topic_prefix,
            topic_replication=self.topic_replication,
            # tansu refuses aiokafka's idempotent producer; Apache Kafka (external or local)
            # gets it.
            kafka_idempotent_producer=(self.idempotent_producer
                                       if self.idempotent_producer is not None
                                       else not isinstance(self.broker, EmbeddedBroker)),
        )
        if self.demo:
            self.boot = bootstrap(self.state_dir, self.config_dir,
                                  protocols_dir=self.protocols_dir)
        else:
            from demo.production import production_boot

            self.boot = production_boot(self.state_dir, self.config_dir)
        groups = [g.id for g in self.boot.county.groups]
        partners = [p.id for p in self.boot.county.partners]
        provision_topics(self.settings, topic_specs(self.settings, groups, partners),
                         wait_for_broker=30.0)
        publish(self.settings, self.boot.messages)
        self.ports = dict(self.fixed_ports) if self.fixed_ports else {
            s: free_port() for s in SERVICES}
        for svc in SERVICES:
            self.start_service(svc)
        self.wait_ready(wait)
        return self

    def start_service(self, svc: str) -> None:
        out = open(self.log_dir / f"{svc}.log", "ab") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
        self.procs[svc] = subprocess.Popen(  # noqa: S603 - our interpreter, our module
            [sys.executable, "-m", f"services.{svc}"], env=self.env(), stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent if self.children_die_with_parent else None)

    def wait_ready(self, timeout: float = 60.0, services: tuple[str, ...] = SERVICES) -> None:
        deadline = time.monotonic() + timeout
        pending = set(services)
        # One client for the whole wait: each new one loads the CA bundle (~60 ms of CPU), which
        # competes with the starting services on a small machine.
        with httpx.Client(timeout=1) as client:
            while pending and time.monotonic() < deadline:
                for svc in list(pending):
                    proc = self.procs[svc]
                    if proc.poll() is not None:
                        raise HubError(f"{svc} exited with code {proc.returncode} during start-up"
                                       + (f"; see {self.log_dir}/{svc}.log"
                                          if self.log_dir else ""))
                    try:
                        if client.get(f"{self.url(svc)}/readyz").status_code == 200:
                            pending.discard(svc)
                    except httpx.HTTPError:
                        pass
                time.sleep(0.2)
        if pending:
            raise HubError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")

    def kill(self, svc: str) -> None:
        proc = self.procs[svc]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_service(self, svc: str, timeout: float = 15.0) -> None:
        proc = self.procs.get(svc)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(svc)

    def stop(self) -> None:
        for svc in reversed(SERVICES):
            self.stop_service(svc)
        if self.broker:
            self.broker.stop()
