"""``s115hub keys``: the pseudonym keyring.

The keyring is one encrypted file in the state directory (``<state_dir>/keyring.bin``, under a key
derived from the master key). Depersonalise re-reads it whenever the file changes, so a rotation
done here reaches the running service on its next record without a restart; this command must
therefore run with the same state directory and master key as depersonalise.
"""

from __future__ import annotations

import typer

from services.core.config.settings import Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.core.crypto.keys import MasterKey

keys_app = typer.Typer(help="Pseudonym keys and data keys: rotate epochs, shred.",
                       no_args_is_help=True)


def open_keyring(settings: Settings) -> PseudonymKeyring:
    master = MasterKey.from_env_or_file(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.resolved_master_key_file())
    return PseudonymKeyring(settings.state_dir / "keyring.bin", master.keyring_key())


@keys_app.command("rotate")
def rotate(
    protocol_ids: list[str] = typer.Argument(None, help="Protocol ids (not id@version)."),
    all_: bool = typer.Option(False, "--all", help="Every protocol that has a key."),
) -> None:
    """Start a new pseudonym key epoch for each PROTOCOL_ID (or --all).

    Records released from then on carry the new key_epoch; tokens of the old epoch cannot be
    joined to tokens of the new one.
    """
    ring = open_keyring(Settings())
    ids = list(ring.protocols()) if all_ else list(protocol_ids or [])
    if not ids:
        raise typer.BadParameter("name at least one protocol id, or pass --all")
    for pid in ids:
        if "@" in pid:
            raise typer.BadParameter(f"{pid!r}: pseudonym keys are per protocol id, without "
                                     "@version")
    for pid in ids:
        epoch = ring.rotate(pid)
        typer.echo(f"{pid}: key epoch {epoch}")


@keys_app.command("shred")
def shred(
    before: str = typer.Option(None, help="YYYY-MM-DD: destroy data keys of days before this."),
    protocol: str = typer.Option(None, help="Protocol id: destroy its pseudonym key epochs "
                                            "instead (with --before-epoch)."),
    before_epoch: int = typer.Option(None, "--before-epoch",
                                     help="With --protocol: destroy epochs below this one."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Destroy keys for good: per-day data keys (--before DATE), or a protocol's pseudonym key
    epochs (--protocol ID --before-epoch N). Every shredding is put on the audit chain.

    Data keys: the sealed personal fields of those days on s115.raw.*, in dead letters and in
    any backup become unreadable for good; depersonalise then reports such records as
    unreadable (metric, dead letter, withheld fact) instead of releasing them. Pseudonym epochs:
    tokens released under them can never again be recomputed or linked to later tokens. Run it
    with the same state directory and master key as ingest and depersonalise.
    """
    from services.cli.audit_cmds import record_change

    if (before is None) == (protocol is None):
        raise typer.BadParameter("give either --before DATE or --protocol ID --before-epoch N")
    settings = Settings()
    if protocol is not None:
        if before_epoch is None or before_epoch < 2:
            raise typer.BadParameter("--before-epoch N (N >= 2) is needed with --protocol",
                                     param_hint="--before-epoch")
        ring = open_keyring(settings)
        doomed = [e for e in ring.epochs(protocol) if e < before_epoch]
        if not yes and not typer.confirm(f"destroy pseudonym key epochs {doomed} of "
                                         f"{protocol}? This cannot be undone"):
            raise typer.Exit(1)
        gone = ring.shred(protocol, before_epoch)
        typer.echo(f"{protocol}: shredded pseudonym key epochs {gone or 'none'}")
        if gone:
            record_change("keys.shredded", f"pseudonym/{protocol}",
                          {"protocol_id": protocol, "epochs": gone})
        return
    gone_days = shred_data_keys(settings, before, yes)
    if gone_days:
        record_change("keys.shredded", "datakeys",
                      {"before": before, "first": gone_days[0], "last": gone_days[-1],
                       "count": len(gone_days)})


def shred_data_keys(settings: Settings, before: str, yes: bool) -> list[str]:
    from datetime import UTC, date, datetime

    from services.core.crypto.fields import DataKeyStore

    try:
        cutoff = date.fromisoformat(before)
    except ValueError:
        raise typer.BadParameter(f"--before {before!r} is not a YYYY-MM-DD date") from None
    today = datetime.now(UTC).date()
    if cutoff > today:
        raise typer.BadParameter(f"--before {cutoff} is after today ({today}): that would "
                                 "destroy the key ingest is sealing with today")
    master = MasterKey.from_env_or_file(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.resolved_master_key_file())
    store = DataKeyStore(settings.state_dir / "datakeys", master.kek())
    doomed = [k for k in store.key_ids() if k < f"dk-{cutoff.isoformat()}"]
    if not yes and not typer.confirm(f"destroy {len(doomed)} data keys before {cutoff}? "
                                     "This cannot be undone"):
        raise typer.Exit(1)
    gone = store.shred_before(cutoff)
    typer.echo(f"shredded {len(gone)} data keys before {cutoff}"
               + (f": {gone[0]} .. {gone[-1]}" if gone else ""))
    return gone
