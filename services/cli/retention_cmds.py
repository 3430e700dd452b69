"""``s115hub retention``: each protocol's ``retention_days`` applied to the topics and key store
holding its data, with every deletion put on the audit chain (issue 16)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import typer

from services.core.config.settings import Settings

retention_app = typer.Typer(help="Retention from the protocols: report and apply.",
                            no_args_is_help=True)


def current_plan(settings: Settings) -> tuple[list[Any], date | None]:
    """(topic rows with the broker's current setting, data-key cutoff) from the live config."""
    from services.core.kafka.topics import FEED_NAMES, topics_for
    from services.core.ops.durable import read_config_state
    from services.core.ops.retention import ProtocolRetention, data_key_cutoff, plan
    from services.core.ops.retention_io import with_current
    from services.protocols.in_force import protocol_set_of

    state = asyncio.run(read_config_state(settings))
    pset, _ = protocol_set_of(state)
    terms = [ProtocolRetention(p.ref, p.retention_days, tuple(p.feeds), tuple(p.recipients))
             for p in pset]
    county = state.county
    rows = plan(terms, topics_for(settings), feeds=FEED_NAMES,
                groups=[g.id for g in county.groups] if county else [],
                partner_feeds={p.id: list(p.feeds) for p in county.partners} if county else {})
    return with_current(settings, rows), data_key_cutoff(terms, datetime.now(UTC).date())


@retention_app.command("report")
def report() -> None:
    """How long each topic keeps which protocols' data, what the broker has now, and which data
    keys are past every protocol's retention."""
    from services.core.ops.retention import render

    rows, cutoff = current_plan(Settings())
    typer.echo(render(rows, cutoff))


@retention_app.command("apply")
def apply(
    shred_keys: bool = typer.Option(True, "--shred-keys/--no-shred-keys",
                                    help="Also shred data keys older than every protocol's "
                                         "retention."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Set each topic's retention.ms from its protocols and shred data keys past retention.
    Each change is recorded on the audit chain (retention.applied, keys.shredded)."""
    from services.cli.audit_cmds import record_change
    from services.cli.keys_cmds import shred_data_keys
    from services.core.ops.retention_io import set_retention

    settings = Settings()
    rows, cutoff = current_plan(settings)
    todo = [r for r in rows if r.change_needed]
    if todo and not yes and not typer.confirm(
            f"set retention on {len(todo)} topics (records older than their retention are "
            "deleted by the broker)?"):
        raise typer.Exit(1)
    for r in set_retention(settings, rows):
        typer.echo(f"{r.topic}: retention {r.days} days (was "
                   f"{'unknown' if r.current_ms is None else r.current_ms} ms)")
        record_change("retention.applied", r.topic, {
            "retention_ms": r.ms, "previous_ms": r.current_ms, "protocols": list(r.protocols)})
    if not todo:
        typer.echo("every topic already has its protocols' retention")
    if shred_keys and cutoff is not None:
        gone = shred_data_keys(settings, cutoff.isoformat(), yes=True)
        if gone:
            record_change("keys.shredded", "datakeys", {
                "before": cutoff.isoformat(), "first": gone[0], "last": gone[-1],
                "count": len(gone), "why": "past every protocol's retention_days"})
