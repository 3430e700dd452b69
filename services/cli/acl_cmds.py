"""``s115hub acl``: install the hub's ACL table (services/core/kafka/acls.py) on Apache Kafka.

Run with the cluster admin's settings (a ``super.users`` principal): the same
``S115HUB_KAFKA_*`` SASL/TLS settings every command reads. ``apply`` is idempotent (Kafka keeps
one copy of an identical ACL) and, with ``--scram-passwords``, also creates or resets the SCRAM
users from a JSON file ``{"user": "password"}`` that never enters git or shell history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from services.core.config.county import load_county
from services.core.config.settings import Settings
from services.core.errors import HubError
from services.core.kafka.acls import Grant, acl_table, partner_user, users_of

acl_app = typer.Typer(help="Kafka ACLs and SCRAM users for the hub's principals.",
                      no_args_is_help=True)


def _county_file(config_dir: Path | None) -> Path:
    return (config_dir or Settings().config_dir) / "county.yaml"


def to_kafka_acl(grant: Grant) -> Any:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    return ACL(principal=grant.principal, host="*",
               operation=ACLOperation[grant.operation.upper()],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(
                   ResourceType[grant.resource.upper()], grant.name,
                   ACLResourcePatternType[grant.pattern.upper()]))


def apply_grants(settings: Settings, grants: list[Grant],
                 passwords: dict[str, str] | None = None) -> int:
    """Create ``grants`` (and SCRAM-SHA-512 credentials for ``passwords``); returns the number of
    ACLs the brokers accepted. Raises HubError naming the first refusal."""
    from kafka.admin import KafkaAdminClient, UserScramCredentialUpsertion

    from services.core.kafka.clients import kafka_python_common

    admin = KafkaAdminClient(**kafka_python_common(settings), client_id="s115hub-acl")
    try:
        if passwords:
            result = admin.alter_user_scram_credentials([
                UserScramCredentialUpsertion(user, "SCRAM-SHA-512", pw)
                for user, pw in sorted(passwords.items())])
            failed = {u: e for u, e in result.items() if e}
            if failed:
                raise HubError(f"SCRAM users refused: {failed}")
        done = admin.create_acls([to_kafka_acl(g) for g in grants])
        if done["failed"]:
            raise HubError(f"{len(done['failed'])} ACLs refused, first: {done['failed'][0]}")
        return len(done["succeeded"])
    finally:
        admin.close()


def _describe(g: Grant) -> str:
    return (f"{g.principal:<32} {g.operation.upper():<8} {g.resource:<5} "
            f"{g.name} ({g.pattern})")


@acl_app.command("show")
def show(config_dir: Path = typer.Option(None, help="Holds county.yaml (default: settings).")
         ) -> None:
    """Print the ACL table for the county: principal, operation, resource, pattern."""
    try:
        county = load_county(_county_file(config_dir))
    except HubError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from None
    for g in acl_table(county, Settings().topic_prefix):
        typer.echo(_describe(g))


@acl_app.command("apply")
def apply(
    config_dir: Path = typer.Option(None, help="Holds county.yaml (default: settings)."),
    scram_passwords: Path = typer.Option(None, help='JSON {"user": "password"}: create or '
                                         "reset these SCRAM-SHA-512 users first."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print, change nothing."),
) -> None:
    """Install the county's ACL table (run as the cluster admin)."""
    settings = Settings()
    try:
        county = load_county(_county_file(config_dir))
        grants = acl_table(county, settings.topic_prefix)
        passwords = None
        if scram_passwords:
            passwords = json.loads(scram_passwords.read_text(encoding="utf-8"))
            unknown = sorted(set(passwords) - set(users_of(county)) - {"admin"})
            if unknown:
                raise HubError(f"{scram_passwords}: users the table does not name: {unknown}")
        if dry_run:
            for g in grants:
                typer.echo(_describe(g))
            typer.echo(f"{len(grants)} ACLs, {len(passwords or {})} SCRAM users (dry run)")
            return
        n = apply_grants(settings, grants, passwords)
    except (HubError, OSError, ValueError) as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from None
    except Exception as exc:  # kafka-python's errors are not HubErrors; keep it one line
        typer.echo(f"s115hub: error: the brokers refused: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"applied {n} ACLs for {len(users_of(county))} principals"
               + (f"; set {len(passwords)} SCRAM users" if passwords else ""))


@acl_app.command("revoke-partner")
def revoke_partner_cmd(partner: str) -> None:
    """Remove PARTNER's Kafka ACLs and SCRAM credential (HTTP keys: ``partner revoke``)."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        KafkaAdminClient,
        ResourcePatternFilter,
        ResourceType,
        UserScramCredentialDeletion,
    )
    from kafka.admin import ACLResourcePatternType as Pat

    from services.core.kafka.clients import kafka_python_common

    settings = Settings()
    user = partner_user(partner)
    try:
        admin = KafkaAdminClient(**kafka_python_common(settings), client_id="s115hub-acl")
        try:
            result = admin.delete_acls([ACLFilter(
                principal=f"User:{user}", host="*", operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, Pat.ANY))])
            removed = sum(len(matched) for _, matched, _ in result)
            admin.alter_user_scram_credentials([UserScramCredentialDeletion(user,
                                                                            "SCRAM-SHA-512")])
        finally:
            admin.close()
    except Exception as exc:  # one line, whatever the client raised
        typer.echo(f"s115hub: error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"removed {removed} ACLs and the SCRAM credential of {user}")
