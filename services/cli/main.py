"""The ``s115hub`` command line."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import typer

from services.cli import (
    acl_cmds,
    audit_cmds,
    dlq_cmds,
    keys_cmds,
    officer_cmds,
    officer_page_cmds,
    protocol_cmds,
    protocol_doc_cmds,
    reconcile_cmds,
    retention_cmds,
    status_cmds,
)
from services.cli.errors import run_cli
from services.cli.group_cmds import group_app
from services.cli.vocabulary_cmds import vocabulary_app
from services.core.config.settings import Settings
from services.core.ops.stop_signals import StopRequested, StopSignals, wait_for_stop

app = typer.Typer(help="s115hub: Section 115 data sharing for Community Safety Partnerships.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(protocol_cmds.protocol_app, name="protocol")
protocol_cmds.protocol_app.command("render")(protocol_doc_cmds.render)
protocol_cmds.protocol_app.command("reviews")(protocol_doc_cmds.reviews)
app.add_typer(keys_cmds.keys_app, name="keys")
app.add_typer(officer_cmds.officer_app, name="officer-keys")
app.add_typer(acl_cmds.acl_app, name="acl")
app.add_typer(audit_cmds.audit_app, name="audit")
app.command("status")(status_cmds.status)
app.add_typer(dlq_cmds.dlq_app, name="dlq")
app.command("reconcile")(reconcile_cmds.reconcile)
app.add_typer(retention_cmds.retention_app, name="retention")
app.add_typer(officer_page_cmds.officer_app, name="officer")
partner_app = typer.Typer(help="Partner credentials (API keys stored only as hashes).",
                          no_args_is_help=True)
app.add_typer(partner_app, name="partner")
config_app = typer.Typer(help="Publish configuration to the config topic.", no_args_is_help=True)
app.add_typer(config_app, name="config")
import_app = typer.Typer(help="Import partner files.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(group_app, name="group")
app.add_typer(vocabulary_app, name="vocabulary")


@app.callback()
def _options(
    env_file: Path = typer.Option(
        None, "--env-file", help="The hub's environment file (default: $S115HUB_ENV_FILE, else "
                                 "<state dir>/s115hub.env as `up` writes it, else the demo's)."),
) -> None:
    """s115hub: Section 115 data sharing for Community Safety Partnerships."""
    # Read in main(), before any command builds its Settings; declared here for --help.


@app.command()
def broker(port: int = typer.Option(19092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Kafka-compatible broker (tansu, in memory) on loopback until SIGTERM,
    SIGINT (Ctrl-C) or SIGHUP."""
    from services.core.kafka.broker import EmbeddedBroker

    with StopSignals() as signals:
        b = EmbeddedBroker(port, die_with_parent=True)
        try:
            b.start()
            typer.echo(f"embedded broker (tansu, in-memory) on {b.bootstrap}; Ctrl-C stops it")
            wait_for_stop()
        except StopRequested:
            pass
        finally:
            signals.stopping()
            b.stop()


@app.command()
def up(
    demo: bool = typer.Option(False, "--demo",
                              help="Demo: generated officer keys sign the protocols, partner keys "
                                   "and group tokens are issued, synthetic records are published "
                                   "for all four feeds. State is throwaway (default "
                                   ".s115hub/demo, wiped on the next demo start)."),
    duration: float = typer.Option(0, help="Stop after this many seconds (0: until a signal)."),
    rate: float = typer.Option(20.0, help="Synthetic records per second with --demo."),
    state_dir: Path = typer.Option(None, help="Keys, credentials and logs (default: "
                                              "S115HUB_STATE_DIR; demo: .s115hub/demo, or "
                                              ".s115hub/kafka with --broker kafka)."),
    config_dir: Path = typer.Option(None, help="county.yaml, protocols/, officers/ (default: "
                                               "S115HUB_CONFIG_DIR; demo: deploy/hertfordshire)."),
    broker_choice: str = typer.Option(
        "auto", "--broker", help="auto: KAFKA_BOOTSTRAP_SERVERS if set, else tansu (demo) or "
                                 "kafka (production). tansu (or embedded): in memory, demo only. "
                                 "kafka: local Apache Kafka (Java 17+) with its data in "
                                 "<state dir>/kafka, kept across restarts."),
) -> None:
    """Run the hub on this machine: the broker (unless KAFKA_BOOTSTRAP_SERVERS names one) and
    ingest, depersonalise and router, until SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops them all.

    Without --demo this is production mode: fixed ports from settings, a state directory created
    once and never deleted, only the officers' own signatures (protocols and officer public keys
    from the config directory), and <state>/s115hub.env written for the CLI (deploy/README.md).
    """
    from services.cli.hub_up import run_up

    run_up(demo=demo, duration=duration, rate=rate, state_dir=state_dir, config_dir=config_dir,
           broker_choice=broker_choice, echo=typer.echo)


@app.command()
def subscribe(
    group: str,
    from_beginning: bool = typer.Option(True, help="Start at the first record."),
    limit: int = typer.Option(0, help="Stop after this many records (0: follow)."),
) -> None:
    """Print a tasking group's stream, one JSON record per line (until a signal with limit 0)."""
    from services.cli.checks import require_group
    from services.cli.streams import print_group

    settings = Settings()
    require_group(settings, group)
    with StopSignals() as signals, contextlib.suppress(StopRequested):
        signals.run(lambda: print_group(settings, group, from_beginning=from_beginning,
                                        limit=limit))


@partner_app.command("add")
def partner_add(partner: str) -> None:
    """Issue an API key for PARTNER. The key is shown once; only its hash is kept."""
    from services.cli.checks import require_partner
    from services.ingest.credentials import CredentialStore

    settings = Settings()
    require_partner(settings, partner)
    issued = CredentialStore(settings.state_dir / "partners.json").add(partner)
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
    protocols_dir: Path = typer.Option(None, help="Signed protocol YAML files (default: "
                                                  "<config dir>/protocols; a demo's: "
                                                  "<state dir>/protocols)."),
    officer_keys: Path = typer.Option(None, help="The pinned officer key file (default: "
                                      "settings' officer_keys_file)."),
) -> None:
    """Publish the county, signed protocols and the pinned officer keys to the config topic."""
    from services.cli.protocol_cmds import config_messages, default_sources
    from services.core.config.publish import publish
    from services.core.kafka.topics import provision_topics, topic_specs

    settings = Settings()
    cdir = config_dir or settings.config_dir
    from services.core.errors import HubError

    protocols, _ = default_sources(settings.state_dir, cdir)
    try:
        messages, county = config_messages(
            cdir, protocols_dir or protocols,
            officer_keys or settings.resolved_officer_keys_file())
    except HubError as exc:  # e.g. a key file the county does not pin: one line, nothing sent
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from None
    provision_topics(settings, topic_specs(settings, [g.id for g in county.groups],
                                           [p.id for p in county.partners]))
    n = publish(settings, messages)
    typer.echo(f"published {n} config entries to {settings.topic_prefix}.config")


@config_app.command("check")
def config_check(
    config_dir: Path = typer.Argument(None, help="The county directory (county.yaml, "
                                                 "protocols/, officers/); default: settings."),
    protocols_dir: Path = typer.Option(None, help="Default: <county dir>/protocols."),
    officers_dir: Path = typer.Option(None, help="Default: <county dir>/officers."),
) -> None:
    """Check a county directory against the boundaries and its protocols before publishing,
    and show what `config apply` would change on the live config topic. Exit 1 on errors."""
    from datetime import UTC, datetime

    from services.cli.config_check import check_county_dir, diff_lines
    from services.cli.protocol_cmds import config_messages
    from services.core.areas import AreaIndex
    from services.core.kafka.topics import broker_answers, topics_for

    settings = Settings()
    cdir = config_dir or settings.config_dir
    pdir, odir = protocols_dir or cdir / "protocols", officers_dir or cdir / "officers"
    report = check_county_dir(cdir, AreaIndex.load(settings.boundaries_dir),
                              datetime.now(UTC).date(), pdir, odir)
    for line in report.lines():
        typer.echo(line)
    if report.errors:
        typer.echo(f"{len(report.errors)} error(s): fix them before `config apply`")
        raise typer.Exit(1)
    topic = topics_for(settings).config
    if not broker_answers(settings.kafka_bootstrap_servers):
        typer.echo(f"no broker reachable at {settings.kafka_bootstrap_servers}: cannot compare "
                   f"with the live {topic} (start the hub, or point S115HUB_ENV_FILE at it)")
        return
    from services.core.errors import HubError

    try:
        messages, _ = config_messages(cdir, pdir, odir)
    except HubError as exc:  # e.g. officer keys not pinned yet: a warning while onboarding
        typer.echo(f"WARNING {exc}; nothing to compare with {topic} until it is fixed")
        return
    live = asyncio.run(_live_config(settings, topic))
    typer.echo(f"config apply would change on {topic} at {settings.kafka_bootstrap_servers}:")
    for line in diff_lines(messages, live):
        typer.echo(line)


async def _live_config(settings: Settings, topic: str) -> dict[str, bytes | None]:
    from services.core.kafka.scan import scan

    live: dict[str, bytes | None] = {}
    async for msg in scan(settings, topic):
        if msg.key is not None:
            live[msg.key.decode()] = msg.value
    return live


@import_app.command("police-uk")
def import_police_uk(
    file: Path,
    partner: str = typer.Option("herts-police", help="The publishing police partner."),
) -> None:
    """Import a police.uk street-level CSV through ingest's validation and encryption."""
    from services.cli.checks import require_partner
    from services.cli.importer import import_police_uk_file

    settings = Settings()
    require_partner(settings, partner)
    result = asyncio.run(import_police_uk_file(settings, file, partner, echo=typer.echo))
    typer.echo(f"imported {file.name}: {result['accepted']} accepted, "
               f"{result['rejected']} rejected")


def main() -> None:
    """The ``s115hub`` entry point: read the hub's environment file, run the command, and turn
    any failure into one line on stderr (services/cli/errors.py)."""
    run_cli(app)


if __name__ == "__main__":
    main()
