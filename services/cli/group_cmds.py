"""``s115hub group token``: tokens for tasking groups that read over HTTP (stream, export, page).

Tokens are shown once and stored only as hashes in ``<state_dir>/group-tokens.json``; the
running router re-reads that file when it changes, so a revocation refuses the very next request
and ends open streams. Run with the router's state directory.
"""

from __future__ import annotations

import re

import typer

from services.core.config.settings import Settings

group_app = typer.Typer(help="Tasking groups: members' own credentials (stored only as "
                             "hashes) and the tasking pack.", no_args_is_help=True)
token_app = typer.Typer(help="Issue, list and revoke a group's HTTP tokens.", no_args_is_help=True)
member_app = typer.Typer(help="Each member of a group has their own token: what they read is "
                              "audited by name.", no_args_is_help=True)
group_app.add_typer(token_app, name="token")
group_app.add_typer(member_app, name="member")


def _known_groups(settings: Settings) -> list[str] | None:
    """Group ids from the county file, or None when it cannot be read (then any id is allowed,
    so tokens can be issued before the configuration is in place)."""
    from services.core.config.county import load_county
    from services.core.errors import HubError

    path = settings.config_dir / "county.yaml"
    try:
        return [g.id for g in load_county(path).groups]
    except (HubError, OSError):
        return None


def _check_group(settings: Settings, group: str, force: bool) -> None:
    known = _known_groups(settings)
    if known is not None and group not in known and not force:
        raise typer.BadParameter(f"{group!r} is not a group in {settings.config_dir}/county.yaml "
                                 f"(groups: {', '.join(known)}); --force issues anyway",
                                 param_hint="GROUP")


_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


@member_app.command("add")
def member_add(group: str, member: str = typer.Argument(
                   ..., help="Who the token is for, e.g. their work e-mail address."),
               force: bool = typer.Option(False, help="Even if GROUP is not in county.yaml."),
               ) -> None:
    """Issue MEMBER of GROUP their own token. Printed once; only its hash is kept; the issue is
    on the audit chain."""
    from services.cli.audit_cmds import record_change
    from services.router.web.tokens import group_token_store

    settings = Settings()
    _check_group(settings, group, force)
    if not _MEMBER.match(member):
        raise typer.BadParameter(f"{member!r}: use letters, digits and . _ @ + - (at most 100)",
                                 param_hint="MEMBER")
    issued = group_token_store(settings).issue(group, member=member)
    typer.echo(f"member {member} of {group}, token {issued.token_id}: {issued.token}")
    typer.echo(f"page: http://{settings.host}:{settings.router_port}/groups/{group}/"
               f"?token=<token>", err=True)
    record_change("group.member.issued", group, {"member": member,
                                                  "token_id": issued.token_id})


@member_app.command("revoke")
def member_revoke(group: str, member: str) -> None:
    """Revoke every live token of MEMBER of GROUP; their next request is refused and open
    streams end."""
    from services.cli.audit_cmds import record_change
    from services.core.config.errors import ConfigError
    from services.router.web.tokens import group_token_store

    try:
        revoked = group_token_store(Settings()).revoke(group, member=member)
    except ConfigError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {', '.join(revoked)} of {member} in {group}")
    record_change("group.member.revoked", group, {"member": member, "token_ids": revoked})


@member_app.command("list")
def member_list(group: str = typer.Argument(None, help="Only this group.")) -> None:
    """Members, their token ids and dates (never the tokens, which are not kept)."""
    from services.router.web.tokens import group_token_store

    for token_id, e in sorted(group_token_store(Settings()).entries().items(),
                              key=lambda kv: (str(kv[1]["holder"]), str(kv[1].get("member")))):
        if group is None or e["holder"] == group:
            state = f"revoked {e['revoked_at']}" if e["revoked_at"] else "live"
            who = e.get("member") or "(shared group token)"
            typer.echo(f"{e['holder']}  {who}  {token_id}  issued {e['created_at']}  {state}")


@token_app.command("issue")
def issue(group: str,
          force: bool = typer.Option(False, help="Issue even if GROUP is not in county.yaml.")
          ) -> None:
    """Issue a shared token for GROUP (prefer `group member add`: a shared token's reads are
    audited by token id, not by person). Printed once; only its hash is kept."""
    from services.router.web.tokens import group_token_store

    settings = Settings()
    _check_group(settings, group, force)
    issued = group_token_store(settings).issue(group)
    typer.echo(f"group {issued.holder} token {issued.token_id}: {issued.token}")
    typer.echo(f"page: http://{settings.host}:{settings.router_port}/groups/{group}/"
               f"?token=<token>", err=True)


@token_app.command("revoke")
def revoke(group: str,
           token_id: str = typer.Option(None, "--token-id", help="Only this token.")) -> None:
    """Revoke GROUP's tokens (all, or one by id). Takes effect on the next request."""
    from services.core.config.errors import ConfigError
    from services.router.web.tokens import group_token_store

    try:
        revoked = group_token_store(Settings()).revoke(group, token_id)
    except ConfigError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {', '.join(revoked)} for {group}")


@token_app.command("list")
def list_tokens(group: str = typer.Argument(None, help="Only this group.")) -> None:
    """Token ids, holders and dates (never the tokens, which are not kept)."""
    from services.router.web.tokens import group_token_store

    for token_id, e in sorted(group_token_store(Settings()).entries().items()):
        if group is None or e["holder"] == group:
            state = f"revoked {e['revoked_at']}" if e["revoked_at"] else "live"
            typer.echo(f"{token_id}  {e['holder']}  issued {e['created_at']}  {state}")


@group_app.command("pack")
def pack(group: str,
         start: str = typer.Option(None, "--from", help="First day (YYYY-MM-DD or ISO time, "
                                                        "UTC). Default: 28 days before --to."),
         end: str = typer.Option(None, "--to", help="End, exclusive. Default: tomorrow 00:00 "
                                                    "UTC (so today is included)."),
         out: str = typer.Option(None, "--out", "-o", help="PDF file to write. Default: "
                                                           "<group>-tasking-pack-<from>-<to>.pdf"),
         html: bool = typer.Option(False, help="Write the HTML instead of printing a PDF."),
         ) -> None:
    """The tasking pack for GROUP and a period, as one printable PDF: ward map, top wards with
    change and significance, category trends, alerts with evidence, MO tags, and what was
    withheld or generalised and why. Read from the group's own topics; audited."""
    import asyncio
    from datetime import UTC, datetime
    from pathlib import Path

    from services.core.errors import HubError
    from services.router.web.pack_source import build_pack

    def when(value: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)",
                                     param_hint=name) from exc
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t

    settings = Settings()
    try:
        doc, s, e, n = asyncio.run(build_pack(settings, group, when(start, "--from"),
                                              when(end, "--to")))
        if html:
            body = doc.encode()
        else:
            from services.router.web.pdf import render_pdf

            body = render_pdf(doc, settings.chromium_path)
    except HubError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    ext = "html" if html else "pdf"
    path = Path(out or f"{group}-tasking-pack-{s:%Y%m%d}-{e:%Y%m%d}.{ext}")
    path.write_bytes(body)
    typer.echo(f"wrote {path} ({len(body):,} bytes): {group}, {s:%Y-%m-%d} to {e:%Y-%m-%d}, "
               f"{n} records")
    _audit_read(settings, group, "pack.pdf" if not html else "pack.html", {
        "group": group, "member": None, "from": s.isoformat(), "to": e.isoformat(),
        "records": n, "file": path.name})


def _audit_read(settings: Settings, group: str, what: str, detail: dict[str, object]) -> None:
    """The officer's read of a group's data, on the chain like a member's (kind access)."""
    from services.core.audit.chain_io import publish_facts
    from services.core.audit.facts import access_fact, default_actor

    try:
        publish_facts(settings, [access_fact(group, default_actor(), what, detail=detail)])
    except Exception as exc:  # kafka-python's errors share no base with ours
        typer.echo(f"s115hub: error: {what} of {group}: written, but NOT audited: the broker at "
                   f"{settings.kafka_bootstrap_servers} did not take the audit fact ({exc})",
                   err=True)
        raise typer.Exit(2) from exc
