"""``s115hub up``: the whole hub on this machine, as a demo or in production mode.

Production (no ``--demo``): the state directory comes from settings, is created once and never
deleted; the services listen on the fixed ports from settings; the config directory's protocols
are published as their officers signed them (nothing is generated or signed); the broker must
keep its data across a restart (Apache Kafka: ``--broker kafka`` or KAFKA_BOOTSTRAP_SERVERS).

Demo: a throwaway state directory (wiped on the next demo start, and only if the demo made it),
free ports, the embedded in-memory broker, generated officer keys, credentials and synthetic
records.

Both write ``<state>/s115hub.env`` (mode 0600) once ready, so the CLI in another terminal finds
the hub, and both stop everything they started on SIGTERM, SIGINT or SIGHUP.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from services.core.config.settings import REPO_ROOT, Settings
from services.core.config.state_dir import ENV_FILE_NAME, prepare_demo_state, write_env_file
from services.core.errors import HubError
from services.core.ops.stop_signals import StopRequested, StopSignals, wait_for_stop

DEMO_STATE = REPO_ROOT / ".s115hub" / "demo"
#: A demo on local Apache Kafka keeps its data, so it gets a directory of its own.
KAFKA_DEMO_STATE = REPO_ROOT / ".s115hub" / "kafka"
DEMO_CONFIG = REPO_ROOT / "deploy" / "hertfordshire"


def external_bootstrap() -> str | None:
    return os.environ.get("S115HUB_KAFKA_BOOTSTRAP_SERVERS") or os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS")


def choose_broker(choice: str, *, demo: bool, external: str | None) -> str:
    """'external', 'embedded' or 'kafka': the one place the broker is chosen."""
    choice = "embedded" if choice == "tansu" else choice
    if choice not in ("auto", "embedded", "kafka"):
        raise HubError(f"--broker {choice}: choose auto, tansu (embedded) or kafka")
    if choice == "auto":
        if external:
            return "external"
        choice = "embedded" if demo else "kafka"
    if choice == "kafka" and external:
        raise HubError("--broker kafka starts its own Apache Kafka; unset "
                       "KAFKA_BOOTSTRAP_SERVERS to use it (or drop --broker to use that one)")
    if choice == "embedded" and not demo:
        raise HubError("the embedded broker keeps nothing across a restart, so production mode "
                       "refuses it: use --broker kafka or set KAFKA_BOOTSTRAP_SERVERS (or add "
                       "--demo)")
    return choice


def cli_settings(hub_env: dict[str, str], *, demo: bool) -> dict[str, str]:
    """What the env file carries: the hub's own settings, and in production also the operator's
    other S115HUB_* settings (SASL/TLS among them, hence mode 0600), so the CLI connects as the
    services do."""
    passed = {} if demo else {k: v for k, v in os.environ.items() if k.startswith("S115HUB_")
                              and k not in ("S115HUB_ENV_FILE", "S115HUB_DEBUG")}
    return {**passed, **hub_env}


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    for svc, port in ports.items():
        with socket.socket() as s:
            # As the services' own servers bind: a listener makes the port busy, but a
            # connection of the hub just stopped, still in TIME_WAIT, does not (a restart
            # right after a stop was refused for up to a minute).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise HubError(f"port {port} ({svc}, S115HUB_{svc.upper()}_PORT) is in use on "
                               f"{host}: is another hub running?") from None


def run_up(*, demo: bool, duration: float, rate: float, state_dir: Path | None,
           config_dir: Path | None, broker_choice: str, echo: Callable[[str], None]) -> None:
    from demo.cluster import SERVICES, LocalHub

    settings = Settings()
    external = external_bootstrap()
    kind = choose_broker(broker_choice, demo=demo, external=external)
    demo_state = KAFKA_DEMO_STATE if kind == "kafka" else DEMO_STATE
    state = (state_dir or (demo_state if demo else settings.state_dir)).resolve()
    config = (config_dir or (DEMO_CONFIG if demo else settings.config_dir)).resolve()
    if not (config / "county.yaml").is_file():
        raise HubError(f"no county.yaml in {config}: give --config-dir or S115HUB_CONFIG_DIR")
    fixed = None
    if not demo:
        fixed = {"ingest": settings.ingest_port, "depersonalise": settings.depersonalise_port,
                 "router": settings.router_port}
        check_ports_free(settings.host, fixed)
    with StopSignals() as signals:
        if demo:
            # On local Apache Kafka a demo's records persist beside its keys: never wiped.
            prepare_demo_state(state, wipe=kind != "kafka")
        hub = LocalHub(state, config, bootstrap_servers=external if kind == "external" else None,
                       log_dir=state / "logs", demo=demo, fixed_ports=fixed,
                       broker_kind="embedded" if kind == "external" else kind,
                       broker_port=None if demo else settings.broker_port,
                       idempotent_producer=(settings.kafka_idempotent_producer
                                            if kind != "embedded" else None),
                       pass_settings_through=not demo, children_die_with_parent=True)
        env_file = state / ENV_FILE_NAME
        echo(("demo" if demo else "production") + ": starting "
             + (f"broker at {external}" if kind == "external" else f"{kind} broker")
             + ", ingest, depersonalise, router ...")
        t0 = time.monotonic()
        try:
            hub.start(topic_prefix=settings.topic_prefix, wait=settings.up_ready_timeout_s)
            assert hub.settings is not None
            write_env_file(env_file, cli_settings(hub.hub_env(), demo=demo))
            echo(f"ready in {time.monotonic() - t0:.1f}s; "
                 f"broker {hub.settings.kafka_bootstrap_servers}")
            echo(f"  ingest API      {hub.url('ingest')}/v1/feeds/{{feed}}/records|ndjson|csv")
            echo(f"  OpenAPI         {hub.url('ingest')}/openapi.json  (docs: /docs)")
            for svc in SERVICES:
                echo(f"  {svc:<15} {hub.url(svc)}/metrics  /healthz  /readyz")
            echo(f"  state and logs  {state}")
            echo(f"  CLI settings    {env_file}  (other terminals: "
                 f"export S115HUB_ENV_FILE={env_file})")
            if demo and hub.boot and hub.boot.group_tokens:
                group, token = next(iter(hub.boot.group_tokens.items()))
                echo(f"  group page      {hub.url('router')}/groups/{group}/?token={token}")
                echo(f"                  (every group's token: {state}/demo-group-tokens.json)")
            if demo:
                from demo.run import run_demo

                echo(f"publishing synthetic records at {rate:g}/s; Ctrl-C stops everything")
                signals.run(lambda: run_demo(hub, rate=rate, duration=duration or None,
                                             echo=echo))
            else:
                echo("SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops everything")
                wait_for_stop(duration)
        except StopRequested as stop:
            echo(f"{stop.args[0]} received")
        finally:
            signals.stopping()
            echo("stopping ...")
            hub.stop()
            if demo:
                env_file.unlink(missing_ok=True)  # its ports die with the demo
            echo("stopped")
