"""The ``s115hub`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from pathlib import Path

import typer

from services.cli import audit_cmds, dlq_cmds, keys_cmds, protocol_cmds, status_cmds
from services.cli.group_cmds import group_app
from services.core.settings import REPO_ROOT, Settings

app = typer.Typer(help="s115hub: Section 115 data sharing for Community Safety Partnerships.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(protocol_cmds.protocol_app, name="protocol")
app.add_typer(keys_cmds.keys_app, name="keys")
app.add_typer(audit_cmds.audit_app, name="audit")
app.command("status")(status_cmds.status)
app.add_typer(dlq_cmds.dlq_app, name="dlq")
partner_app = typer.Typer(help="Partner credentials (API keys stored only as hashes).",
                          no_args_is_help=True)
app.add_typer(partner_app, name="partner")
config_app = typer.Typer(help="Publish configuration to the config topic.", no_args_is_help=True)
app.add_typer(config_app, name="config")
import_app = typer.Typer(help="Import partner files.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(group_app, name="group")
#: Inside an ``up --broker kafka`` state directory: the local Apache Kafka's nodes and data.
KAFKA_SUBDIR = "kafka"


@app.command()
def broker(port: int = typer.Option(19092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Kafka-compatible broker (tansu) on loopback until Ctrl-C."""
    from services.core.broker import EmbeddedBroker

    b = EmbeddedBroker(port).start()
    typer.echo(f"embedded broker (tansu, in-memory) on {b.bootstrap}; Ctrl-C stops it")
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        b.stop()


@app.command()
def up(
    demo: bool = typer.Option(False, "--demo",
                              help="Publish synthetic records for all four feeds."),
    duration: float = typer.Option(0, help="Stop after this many seconds (0: until Ctrl-C)."),
    rate: float = typer.Option(20.0, help="Synthetic records per second with --demo."),
    state_dir: Path | None = typer.Option(
        None, help="Keys, state and logs (default .s115hub/demo; .s115hub/kafka with "
                   "--broker kafka)."),
    config_dir: Path = typer.Option(REPO_ROOT / "deploy" / "hertfordshire"),
    broker: str = typer.Option(
        "tansu", "--broker",
        help="tansu: the embedded in-memory broker, fresh keys every start. kafka: local Apache "
             "Kafka whose data, and the hub's keys and state, persist in the state directory."),
) -> None:
    """Start the broker (embedded unless KAFKA_BOOTSTRAP_SERVERS is set) and the three services."""
    from services.demo.cluster import LocalHub
    from services.demo.run import run_demo

    settings = Settings()
    external = _external_bootstrap()
    if broker not in ("tansu", "kafka"):
        raise typer.BadParameter(f"{broker!r}: use tansu or kafka", param_hint="--broker")
    persistent = broker == "kafka"
    if persistent and external:
        raise typer.BadParameter("--broker kafka starts its own Apache Kafka; unset "
                                 "KAFKA_BOOTSTRAP_SERVERS to use it", param_hint="--broker")
    state_dir = state_dir or REPO_ROOT / ".s115hub" / ("kafka" if persistent else "demo")
    if not persistent and state_dir.exists():
        if (state_dir / KAFKA_SUBDIR).exists():
            # A persistent hub's data and keys: never wiped by a demo start.
            raise typer.BadParameter(f"{state_dir} holds a persistent hub (--broker kafka); "
                                     "choose another --state-dir", param_hint="--state-dir")
        shutil.rmtree(state_dir)  # a demo generates fresh keys every time
    hub = LocalHub(state_dir, config_dir, bootstrap_servers=external, log_dir=state_dir / "logs",
                   idempotent_producer=settings.kafka_idempotent_producer if external else None,
                   kafka_dir=state_dir / KAFKA_SUBDIR if persistent else None)
    what = ("broker at " + external if external else
            "local Apache Kafka (data in " + str(state_dir / KAFKA_SUBDIR) + ")" if persistent
            else "embedded tansu broker")
    typer.echo(f"starting: {what}, ingest, depersonalise, router ...")
    t0 = time.monotonic()
    try:
        hub.start(topic_prefix=settings.topic_prefix)
        assert hub.settings is not None
        typer.echo(f"ready in {time.monotonic() - t0:.1f}s; "
                   f"broker {hub.settings.kafka_bootstrap_servers}")
        typer.echo(f"  ingest API      {hub.url('ingest')}/v1/feeds/{{feed}}/records|ndjson|csv")
        typer.echo(f"  OpenAPI         {hub.url('ingest')}/openapi.json  (docs: /docs)")
        for svc in ("ingest", "depersonalise", "router"):
            typer.echo(f"  {svc:<15} {hub.url(svc)}/metrics  /healthz  /readyz")
        typer.echo(f"  state and logs  {state_dir}")
        if hub.boot and hub.boot.group_tokens:
            group, token = next(iter(hub.boot.group_tokens.items()))
            typer.echo(f"  group page      {hub.url('router')}/groups/{group}/?token={token}")
            typer.echo(f"                  (every group's token: "
                       f"{state_dir}/demo-group-tokens.json)")
        if demo:
            typer.echo(f"publishing synthetic records at {rate:g}/s; Ctrl-C stops everything")
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(run_demo(hub, rate=rate, duration=duration or None, echo=typer.echo))
        else:
            typer.echo("Ctrl-C stops everything")
            _wait(duration)
    finally:
        typer.echo("stopping ...")
        hub.stop()
        typer.echo("stopped")


def _wait(duration: float) -> None:
    try:
        if duration:
            time.sleep(duration)
        else:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass


def _external_bootstrap() -> str | None:
    import os

    return os.environ.get("S115HUB_KAFKA_BOOTSTRAP_SERVERS") or os.environ.get(
        "KAFKA_BOOTSTRAP_SERVERS")


@app.command()
def subscribe(
    group: str,
    from_beginning: bool = typer.Option(True, help="Start at the first record."),
    limit: int = typer.Option(0, help="Stop after this many records (0: follow)."),
) -> None:
    """Print a tasking group's stream, one JSON record per line."""
    from services.cli.streams import print_group

    asyncio.run(print_group(Settings(), group, from_beginning=from_beginning, limit=limit))


@partner_app.command("add")
def partner_add(partner: str) -> None:
    """Issue an API key for PARTNER. The key is shown once; only its hash is kept."""
    from services.ingest.credentials import CredentialStore

    issued = CredentialStore(Settings().state_dir / "partners.json").add(partner)
    typer.echo(f"partner {issued.partner} key {issued.key_id}: {issued.api_key}")
    audit_cmds.record_change("partner.added", partner, {"key_id": issued.key_id})


@partner_app.command("revoke")
def partner_revoke(partner: str, key_id: str = typer.Option(None, help="Only this key.")) -> None:
    """Revoke PARTNER's keys (all, or one)."""
    from services.ingest.credentials import CredentialStore

    revoked = CredentialStore(Settings().state_dir / "partners.json").revoke(partner, key_id)
    typer.echo(f"revoked {', '.join(revoked)} for {partner}")
    audit_cmds.record_change("partner.revoked", partner, {"key_ids": sorted(revoked)})


@config_app.command("apply")
def config_apply(
    config_dir: Path = typer.Option(None, help="Holds county.yaml (default: settings)."),
    protocols_dir: Path = typer.Option(None, help="Signed protocol YAML files."),
    officers_dir: Path = typer.Option(None, help="<party>/<key id>.pub.pem officer keys."),
) -> None:
    """Publish the county, signed protocols and officer public keys to the config topic."""
    from services.cli.protocol_cmds import config_messages
    from services.core.config_publish import publish
    from services.core.kafka import ensure_topics
    from services.core.topics import topic_specs

    settings = Settings()
    cdir = config_dir or settings.config_dir
    messages, county = config_messages(cdir, protocols_dir or settings.state_dir / "protocols",
                                       officers_dir or settings.state_dir / "officers")
    ensure_topics(settings, topic_specs(settings, [g.id for g in county.groups],
                                        [p.id for p in county.partners]))
    n = publish(settings, messages)
    typer.echo(f"published {n} config entries to {settings.topic_prefix}.config")


@import_app.command("police-uk")
def import_police_uk(
    file: Path,
    partner: str = typer.Option("herts-police", help="The publishing police partner."),
) -> None:
    """Import a police.uk street-level CSV through ingest's validation and encryption."""
    from services.cli.importer import import_police_uk_file

    result = asyncio.run(import_police_uk_file(Settings(), file, partner, echo=typer.echo))
    typer.echo(f"imported {file.name}: {result['accepted']} accepted, "
               f"{result['rejected']} rejected")


if __name__ == "__main__":
    app()
