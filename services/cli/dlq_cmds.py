"""``s115hub dlq``: the dead letters on s115.rejected.

``list`` shows context and reasons only (the original record stays sealed). ``replay`` opens the
sealed original with the data key of the day it was rejected, re-validates it (or takes the
officer's correction) and publishes it through ingest's own path; it needs the same state
directory and master key as ingest.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from services.core.config.settings import Settings

dlq_app = typer.Typer(help="Dead letters: list and replay rejected records.", no_args_is_help=True)


@dlq_app.command("list")
def dlq_list(
    partner: str = typer.Option(None, help="Only this partner's."),
    feed: str = typer.Option(None, help="Only this feed's."),
    pending: bool = typer.Option(False, help="Only those not yet replayed."),
    source_id: str = typer.Option(None, "--source-id",
                                  help="Only the letter(s) for this partner reference."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List dead letters: id, partner, feed, line or index, and why each was rejected."""
    from services.ingest.dlq import read_letters

    letters = asyncio.run(read_letters(Settings()))
    shown = 0
    for letter in letters:
        s = letter.summary()
        if (partner and s["partner"] != partner) or (feed and s["feed"] != feed) \
                or (pending and s["replayed"]) or (source_id and s["source_id"] != source_id):
            continue
        shown += 1
        if as_json:
            typer.echo(json.dumps(s))
            continue
        where = next((f"{k} {s[k]}" for k in ("line", "index", "offset") if k in s), "")
        status = f" replayed as {s['replayed'][-1]}" if s["replayed"] else ""
        reasons = "; ".join(f"{p['pointer'] or '/'}: {p['reason']}" for p in s["problems"])
        ref = f" source_id {s['source_id']}" if s["source_id"] else ""
        typer.echo(f"{s['rejection_id']}  {s['rejected_at']}  {s['stage']} {s['partner']}/"
                   f"{s['feed']} {where}{ref}{status}\n    {reasons}")
    if not as_json:
        typer.echo(f"{shown} dead letters")


@dlq_app.command("replay")
def dlq_replay(
    rejection_ids: list[str] = typer.Argument(None, help="Dead letters to replay."),
    all_: bool = typer.Option(False, "--all", help="Every dead letter not yet replayed."),
    corrected: Path = typer.Option(None, help='NDJSON of {"rejection_id": ..., "record": {...}}: '
                                              "replay these corrected records instead."),
    force: bool = typer.Option(False, help="Replay even if replayed before."),
    dry_run: bool = typer.Option(False, help="Only say what would be replayed."),
) -> None:
    """Re-validate dead letters (or take corrections) and publish the valid ones."""
    from services.ingest.dlq import read_corrections, replay

    fixes = read_corrections(corrected.read_text(encoding="utf-8")) if corrected else {}
    if not (rejection_ids or all_ or fixes):
        raise typer.BadParameter("name rejection ids, pass --corrected FILE, or pass --all")
    ids = None if all_ else set(rejection_ids or [])
    results = asyncio.run(replay(Settings(), ids=ids, corrected=fixes, force=force,
                                 dry_run=dry_run))
    for r in results:
        suffix = f" -> {r.hub_record_id}" if r.hub_record_id else ""
        typer.echo(f"{r.rejection_id}: {r.status} ({r.detail}){suffix}")
    done = sum(1 for r in results if r.status == "replayed")
    typer.echo(f"{done} replayed, {len(results) - done} not")
    if any(r.status in ("still_invalid", "unreadable", "not_granted") for r in results):
        raise typer.Exit(1)
