"""``s115hub reconcile``: what became of each record a partner sent in a period, by the
partner's own reference; on screen and as CSV to send back to the partner. Everything is read
from durable topics (see ``services/core/audit/reconcile.py``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import typer

from services.core.config.settings import Settings


def parse_when(value: str, name: str) -> datetime:
    """An ISO-8601 time or date with a zone (a date means its midnight UTC)."""
    from datetime import UTC, date

    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 date or time",
                                 param_hint=name) from None
    if dt.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone; add Z or +01:00", param_hint=name)
    return dt


def reconcile(
    partner: str = typer.Argument(..., help="Partner id, as in the county file."),
    from_: str = typer.Option(..., "--from", help="Start (ISO date or time with zone), "
                                                  "inclusive."),
    to: str = typer.Option(..., "--to", help="End (ISO date or time with zone), exclusive."),
    csv_file: Path = typer.Option(None, "--csv", help="Also write one CSV line per record here."),
) -> None:
    """Per partner and period: accepted, rejected, delivered to whom, generalised, withheld and
    unrouted, by the partner's source_id."""
    from services.core.audit.reconcile import reconcile as build
    from services.core.audit.reconcile import render, to_csv

    start, end = parse_when(from_, "--from"), parse_when(to, "--to")
    if end <= start:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    from services.core.ops.durable import read_facts

    facts = asyncio.run(read_facts(Settings()))
    county = facts.config.county
    known = {p.id for p in county.partners} if county else None
    if known is not None and partner not in known:
        raise typer.BadParameter(f"no partner {partner!r} in the live county file (known: "
                                 f"{', '.join(sorted(known)) or 'none'})", param_hint="PARTNER")
    rec = build(partner, start, end, envelopes=facts.envelopes, letters=facts.letters,
                events=facts.events)
    typer.echo(render(rec))
    if csv_file is not None:
        csv_file.write_text(to_csv(rec), encoding="utf-8")
        typer.echo(f"wrote {len(rec.rows)} records to {csv_file}")
