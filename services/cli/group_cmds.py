"""``s115hub group token``: tokens for tasking groups that read over HTTP (stream, export, page).

Tokens are shown once and stored only as hashes in ``<state_dir>/group-tokens.json``; the
running router re-reads that file when it changes, so a revocation refuses the very next request
and ends open streams. Run with the router's state directory.
"""

from __future__ import annotations

import typer

from services.core.settings import Settings

group_app = typer.Typer(help="Tasking groups: HTTP tokens (stored only as hashes).",
                        no_args_is_help=True)
token_app = typer.Typer(help="Issue, list and revoke a group's HTTP tokens.", no_args_is_help=True)
group_app.add_typer(token_app, name="token")


def _known_groups(settings: Settings) -> list[str] | None:
    """Group ids from the county file, or None when it cannot be read (then any id is allowed,
    so tokens can be issued before the configuration is in place)."""
    from services.core.county import load_county
    from services.core.errors import HubError

    path = settings.config_dir / "county.yaml"
    try:
        return [g.id for g in load_county(path).groups]
    except (HubError, OSError):
        return None


@token_app.command("issue")
def issue(group: str,
          force: bool = typer.Option(False, help="Issue even if GROUP is not in county.yaml.")
          ) -> None:
    """Issue a token for GROUP. It is printed once; only its hash is kept."""
    from services.router.web.tokens import group_token_store

    settings = Settings()
    known = _known_groups(settings)
    if known is not None and group not in known and not force:
        raise typer.BadParameter(f"{group!r} is not a group in {settings.config_dir}/county.yaml "
                                 f"(groups: {', '.join(known)}); --force issues anyway",
                                 param_hint="GROUP")
    issued = group_token_store(settings).issue(group)
    typer.echo(f"group {issued.holder} token {issued.token_id}: {issued.token}")
    typer.echo(f"page: http://{settings.host}:{settings.router_port}/groups/{group}/"
               f"?token=<token>", err=True)


@token_app.command("revoke")
def revoke(group: str,
           token_id: str = typer.Option(None, "--token-id", help="Only this token.")) -> None:
    """Revoke GROUP's tokens (all, or one by id). Takes effect on the next request."""
    from services.core.errors import ConfigError
    from services.router.web.tokens import group_token_store

    try:
        revoked = group_token_store(Settings()).revoke(group, token_id)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
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
