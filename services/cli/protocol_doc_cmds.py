"""``s115hub protocol render`` and ``protocol reviews``: the paperwork an information-governance
board asks for, from the same documents the hub enforces (issue 16)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from services.core.config.settings import Settings


def _context_from_state(state: Any, protocol: Any, today: Any, anchors: Any) -> Any:
    """Names, officers, signature checks and status as the live hub sees them: signatures are
    checked against the pinned officer key file (``anchors``), as the services check them."""
    from services.protocols.document import DocumentContext
    from services.protocols.in_force import protocol_set_of
    from services.protocols.signing import valid_signers

    county = state.county
    names = ({p.id: p.name for p in county.partners} | {g.id: g.name for g in county.groups}
             if county else {})
    officers = ({p.id: p.officer for p in county.partners}
                | {g.id: g.officer for g in county.groups} if county else {})
    pset, _ = protocol_set_of(state, anchors)
    valid = valid_signers(protocol, pset.officer_keys)
    verified = {s.party: "valid" if s.party in valid else "DOES NOT VERIFY"
                for s in protocol.signatures}
    st = pset.status(protocol, today)
    status = "LIVE" if st.live else "NOT LIVE: " + "; ".join(st.reasons)
    return DocumentContext(names, officers, verified, today, status)


def render(
    source: str = typer.Argument(..., help="A protocol YAML file, or id@version on the hub."),
    fmt: str = typer.Option("html", "--format", help="html or md."),
    out: Path = typer.Option(None, help="Write here instead of standard output."),
) -> None:
    """Render a protocol as a readable document: parties, purpose, lawful basis, what each field
    becomes, risk-gate terms, dates and signatures (checked against the hub's officer keys when
    rendered from the hub)."""
    from services.core.ops.durable import read_config_state
    from services.protocols.document import (
        DocumentContext,
        render_html,
        render_markdown,
    )
    from services.protocols.protocol import load_protocol, parse_protocol

    if fmt not in ("html", "md"):
        raise typer.BadParameter("format is html or md", param_hint="--format")
    today = datetime.now(UTC).date()
    path = Path(source)
    if path.exists():
        protocol = load_protocol(path)
        ctx = DocumentContext(today=today)
        county_file = Settings().config_dir / "county.yaml"
        if county_file.exists():
            from services.core.config.county import load_county

            county = load_county(county_file)
            names = {p.id: p.name for p in county.partners} | {
                g.id: g.name for g in county.groups}
            officers = {p.id: p.officer for p in county.partners} | {
                g.id: g.officer for g in county.groups}
            ctx = DocumentContext(names, officers, None, today)
    else:
        from services.core.crypto.officer_trust import AnchorFile

        settings = Settings()
        state = asyncio.run(read_config_state(settings))
        text = state.protocol_texts.get(source)
        if text is None:
            known = ", ".join(sorted(state.protocol_texts)) or "none"
            raise typer.BadParameter(f"no file {source!r} and no protocol {source!r} on the hub "
                                     f"(known: {known})", param_hint="SOURCE")
        protocol = parse_protocol(text, source=f"protocol/{source}")
        ctx = _context_from_state(state, protocol, today,
                                  AnchorFile(settings.resolved_officer_keys_file()))
    doc = render_html(protocol, ctx) if fmt == "html" else render_markdown(protocol, ctx)
    if out is None:
        typer.echo(doc, nl=False)
    else:
        out.write_text(doc, encoding="utf-8")
        typer.echo(f"wrote {protocol.ref} to {out}")


def reviews(
    within: int = typer.Option(30, help="Days ahead to look."),
) -> None:
    """Protocols on the hub whose review_by falls within WITHIN days or has passed. Exit 1 when
    any does, so a scheduled job can send the reminder."""
    from services.core.ops.durable import read_config_state
    from services.core.ops.status import reviews_due
    from services.protocols.in_force import protocol_rows

    today = datetime.now(UTC).date()
    from services.core.crypto.officer_trust import AnchorFile

    settings = Settings()
    state = asyncio.run(read_config_state(settings))
    anchors = AnchorFile(settings.resolved_officer_keys_file())
    due = reviews_due(protocol_rows(state, today, anchors), today, within)
    for p, days in due:
        when = f"OVERDUE by {-days} days" if days < 0 else f"due in {days} days"
        typer.echo(f"{p.ref}: review by {p.review_by} ({when}); parties {', '.join(p.parties)}")
    if not due:
        typer.echo(f"no protocol review falls due within {within} days")
    raise typer.Exit(1 if due else 0)
