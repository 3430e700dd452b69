"""``s115hub officer-keys``: the pinned officer key file (services/core/crypto/officer_trust.py).

The file is an ordered log. ``init`` writes the first set from the officers' public keys;
``propose`` appends a change (a new key, a replacement, a removal) that counts only once
``countersign`` has added another party's officer's signature; ``show`` prints the keys the file
trusts and the fingerprint to pin as ``officer_keys_sha256`` in county.yaml. Nothing here touches
Kafka: the file reaches the services as a mounted secret, and ``config apply`` publishes its keys
to the config topic for the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from services.core.errors import HubError

officer_app = typer.Typer(help="Officer trust anchors: the pinned officer key file.",
                          no_args_is_help=True)


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except HubError as exc:
        typer.echo(f"s115hub: error: {exc}", err=True)
        raise typer.Exit(1) from None


def _officer_names(config_dir: Path | None) -> dict[str, str]:
    if config_dir is None:
        return {}
    from services.core.config.county import load_county

    county = load_county(config_dir / "county.yaml")
    names = {p.id: p.officer for p in county.partners}
    names.update({g.id: g.officer for g in county.groups})
    return names


@officer_app.command("init")
def init(
    file: Path,
    officers_dir: Path = typer.Option(..., help="<party>/*.pub.pem: the first officer keys."),
    config_dir: Path = typer.Option(None, help="county.yaml, for the officers' names."),
) -> None:
    """Write FILE with the first set of officer keys and print the fingerprint to pin."""
    from services.core.crypto.officer_trust import dump_log, fingerprint, genesis
    from services.protocols.signing import load_public_key

    with _one_line():
        if file.exists():
            raise HubError(f"{file} exists; change it with `officer-keys propose` and "
                           "`countersign`")
        names = _officer_names(config_dir)
        keys = [(pub.parent.name, names.get(pub.parent.name, f"officer, {pub.parent.name}"),
                 load_public_key(pub)) for pub in sorted(officers_dir.glob("*/*.pub.pem"))]
        if not keys:
            raise HubError(f"no <party>/*.pub.pem under {officers_dir}")
        log = genesis(keys)
        file.write_text(dump_log(log), encoding="utf-8")
    typer.echo(f"{len(keys)} officer keys; pin in county.yaml: "
               f"officer_keys_sha256: \"{fingerprint(log)}\"")


@officer_app.command("propose")
def propose(
    file: Path,
    party: str = typer.Option(...),
    officer: str = typer.Option(..., help="The officer's name."),
    public_key: Path = typer.Option(None, help="The new key's public PEM."),
    replaces: str = typer.Option(None, help="Key id this key replaces."),
    remove: str = typer.Option(None, help="Key id to remove (instead of adding one)."),
) -> None:
    """Append a key change to FILE. It counts only after another party's officer countersigns."""
    from services.core.crypto.officer_trust import KeyChange, change_for, dump_log, load_log
    from services.protocols.signing import load_public_key

    with _one_line():
        log = load_log(file)
        if log is None:
            raise HubError(f"no officer key file {file}")
        if log.changes and log.changes[-1].countersignature is None:
            raise HubError("the last change is not countersigned yet")
        if remove:
            change = KeyChange(action="remove", party=party, officer=officer, key_id=remove)
        elif public_key:
            change = change_for(party, officer, load_public_key(public_key), replaces=replaces)
        else:
            raise HubError("give --public-key (add or replace) or --remove KEY_ID")
        file.write_text(dump_log(log.model_copy(update={"changes": [*log.changes, change]})),
                        encoding="utf-8")
    typer.echo(f"proposed: {change.action} {change.key_id} for {party}; another party's officer "
               f"must now run `s115hub officer-keys countersign {file}`")


@officer_app.command("countersign")
def countersign_cmd(
    file: Path,
    key: Path = typer.Option(..., help="The countersigning officer's private key PEM."),
    party: str = typer.Option(..., help="The countersigning officer's party."),
    officer: str = typer.Option(..., help="The countersigning officer's name."),
) -> None:
    """Countersign the last change in FILE and print the new fingerprint to pin."""
    from services.core.crypto.officer_trust import (
        countersign,
        dump_log,
        fingerprint,
        load_log,
        replay,
    )
    from services.protocols.signing import load_private_key

    with _one_line():
        log = load_log(file)
        if log is None or not log.changes:
            raise HubError(f"no change to countersign in {file}")
        signed = countersign(log, len(log.changes) - 1, load_private_key(key), party, officer)
        result = replay(signed)
        last = len(signed.changes)
        bad = [p for p in result.problems if p.startswith(f"change {last} ")]
        if bad:
            raise HubError(bad[0])
        file.write_text(dump_log(signed), encoding="utf-8")
    typer.echo(f"countersigned by {officer}@{party}; pin in county.yaml: "
               f"officer_keys_sha256: \"{fingerprint(signed)}\"")


@officer_app.command("show")
def show(file: Path) -> None:
    """The keys FILE trusts, who vouched for each, and its fingerprint; exit 1 on problems."""
    from services.core.crypto.officer_trust import fingerprint, load_log, replay

    with _one_line():
        log = load_log(file)
        if log is None:
            raise HubError(f"no officer key file {file}")
        result = replay(log)
    for kid, (party, officer, signer) in sorted(result.provenance.items(),
                                                key=lambda kv: (kv[1][0], kv[0])):
        typer.echo(f"{party}: {kid} {officer} (vouched: {signer})")
    for problem in result.problems:
        typer.echo(f"PROBLEM: {problem}")
    typer.echo(f"officer_keys_sha256: \"{fingerprint(log)}\"")
    raise typer.Exit(1 if result.problems else 0)
