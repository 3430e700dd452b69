"""``s115hub officer token``: credentials for the officer page (``/officer/`` on the router).

Shown once, stored only as hashes in ``<state_dir>/officer-tokens.json``; the router re-reads
the file on every request, so a revocation signs the officer out at once. Run with the router's
state directory. Issuing and revoking are put on the audit chain.
"""

from __future__ import annotations

import typer

from services.core.config.settings import Settings

officer_app = typer.Typer(help="Designated officers: officer page credentials.",
                          no_args_is_help=True)
#: ``s115hub officer token``; attach it to whichever ``officer`` command group the CLI has.
token_app = typer.Typer(help="Issue, list and revoke officer page tokens.", no_args_is_help=True)
officer_app.add_typer(token_app, name="token")


@token_app.command("issue")
def issue(name: str = typer.Argument(..., help="Who it is for (shown in the audit chain).")
          ) -> None:
    """Issue a token for the officer NAME. It is printed once; only its hash is kept."""
    from services.cli.audit_cmds import record_change
    from services.router.web.officer_tokens import officer_token_store

    settings = Settings()
    issued = officer_token_store(settings).issue(name)
    typer.echo(f"officer {issued.holder} token {issued.token_id}: {issued.token}")
    typer.echo(f"page: http://{settings.host}:{settings.router_port}/officer/", err=True)
    record_change("officer.action", f"officer-token/{name}",
                  {"token_id": issued.token_id, "what": "issued"})


@token_app.command("revoke")
def revoke(name: str, token_id: str = typer.Option(None, "--token-id", help="Only this one.")
           ) -> None:
    """Revoke NAME's officer tokens (all, or one by id). Takes effect on the next request."""
    from services.cli.audit_cmds import record_change
    from services.core.config.errors import ConfigError
    from services.router.web.officer_tokens import officer_token_store

    try:
        revoked = officer_token_store(Settings()).revoke(name, token_id)
    except ConfigError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"revoked {', '.join(revoked)} for {name}")
    record_change("officer.action", f"officer-token/{name}",
                  {"token_ids": revoked, "what": "revoked"})


@token_app.command("list")
def list_tokens() -> None:
    """Token ids, officers and dates (never the tokens, which are not kept)."""
    from services.router.web.officer_tokens import officer_token_store

    for token_id, e in sorted(officer_token_store(Settings()).entries().items()):
        state = f"revoked {e['revoked_at']}" if e["revoked_at"] else "live"
        typer.echo(f"{token_id}  {e['holder']}  issued {e['created_at']}  {state}")
