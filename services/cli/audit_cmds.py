"""``s115hub audit``: verify the disclosure chain, query it, export a signed bundle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from services.core.config.settings import Settings

audit_app = typer.Typer(help="The disclosure audit chain: verify, query, export.",
                        no_args_is_help=True)

_PROGRESS_EVERY = 10_000


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _read(settings: Settings) -> Any:
    from services.core.audit.chain_io import read_chain

    _err(f"reading {settings.topic_prefix}.audit ...")
    chain = asyncio.run(read_chain(settings, progress=lambda n: _err(f"  read {n:,} messages")))
    _err(f"  {len(chain.events):,} events, {len(chain.checkpoints):,} checkpoints")
    return chain


def _trusted_keys(settings: Settings, public_keys: list[Path]) -> dict[str, Any]:
    """Key id -> public key: the ones given, else the hub's own (its .pub file, or the private
    key when only that is at hand)."""
    from services.core.audit.key import (
        audit_key_id,
        load_audit_key,
        load_public_key,
        public_path,
    )
    from services.core.crypto.errors import CryptoError

    keys = {}
    for path in public_keys:
        key = load_public_key(path)
        keys[audit_key_id(key)] = key
    if keys:
        return keys
    private = settings.resolved_audit_key_file()
    pub = public_path(private)
    if pub.exists():
        key = load_public_key(pub)
        return {audit_key_id(key): key}
    if private.exists():
        hub = load_audit_key(private)
        return {hub.key_id: hub.public}
    raise CryptoError(f"no audit public key: give --public-key, or provide {pub}")


def _with_progress(items: list[Any]) -> Iterator[Any]:
    for i, item in enumerate(items, 1):
        if i % _PROGRESS_EVERY == 0:
            _err(f"  verified {i:,} / {len(items):,} events")
        yield item


@audit_app.command("verify")
def verify(
    bundle: Path = typer.Option(None, "--bundle", help="Check an exported bundle offline "
                                                        "instead of the live topic."),
    public_key: list[Path] = typer.Option(
        [], "--public-key", help="Trusted hub public key (PEM); repeatable. Default: the hub's "
                                 "own key from the state directory."),
) -> None:
    """Check every link of the chain and every checkpoint signature.

    Reports the first bad position (0 = first event) when an event was edited, deleted,
    reordered or inserted. Exit code 0 when intact, 1 when not.
    """
    from services.core.audit.bundle import verify_bundle
    from services.core.audit.chain import verify_chain

    settings = Settings()
    if bundle is not None:
        trusted = None
        if public_key:
            from services.core.audit.key import load_public_key

            if len(public_key) > 1:
                raise typer.BadParameter("a bundle is signed by one key; give one --public-key")
            trusted = load_public_key(public_key[0])
        report = verify_bundle(bundle, trusted_public_key=trusted)
        where = f"bundle {bundle}"
        offset = None
    else:
        keys = _trusted_keys(settings, public_key)
        chain = _read(settings)
        report = verify_chain(_with_progress(chain.events), chain.checkpoints, keys)
        where = f"topic {settings.topic_prefix}.audit"
        offset = chain.offset_of(report.first_bad_position)
        if report.ok and chain.events and not chain.checkpoints:
            _err("warning: no checkpoint yet; the chain is protected by its hash links only")
    if report.ok:
        typer.echo(f"OK {where}: {report.events_checked} events, "
                   f"{report.checkpoints_checked} checkpoints verified; head {report.head_hash}"
                   + (f"; signer {report.signer_fingerprint}" if report.signer_fingerprint
                      else "") + (" (key not given: compare with the published fingerprint)"
                                  if bundle is not None and not public_key else ""))
        return
    pos = ("" if report.first_bad_position is None
           else f" at position {report.first_bad_position}"
           + (f" (topic offset {offset})" if offset is not None else ""))
    cp = "" if report.bad_checkpoint is None else f" [checkpoint {report.bad_checkpoint}]"
    typer.echo(f"FAILED {where}{pos}{cp}: {report.reason}")
    raise typer.Exit(1)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time", param_hint=name) from None
    if dt.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no timezone; add Z or +01:00", param_hint=name)
    return dt


def _ids_for_source(settings: Settings, source_id: str, partner: str | None) -> set[str]:
    """Hub record ids of accepted records with this source id (one per partner using it)."""
    from services.core.ops.durable import read_facts

    return {str(e.get("hub_record_id")) for e in asyncio.run(read_facts(settings)).envelopes
            if e.get("source_id") == source_id and (partner is None or e.get("partner") == partner)}


@audit_app.command("query")
def query_cmd(
    record: str = typer.Option(None, help="Hub record id."),
    group: str = typer.Option(None, help="Recipient tasking group."),
    protocol: str = typer.Option(None, help="Protocol id (any version) or id@version."),
    since: str = typer.Option(None, help="From this time (ISO-8601 with zone), inclusive."),
    until: str = typer.Option(None, help="Before this time (ISO-8601 with zone)."),
    kind: str = typer.Option(None, help="disclosure, alert, config, access (a member's or "
                                        "officer's read), unrouted, withheld or generalised."),
    source_id: str = typer.Option(None, "--source-id",
                                  help="The partner's own reference (matched through the raw "
                                       "topics' envelopes)."),
    partner: str = typer.Option(None, help="Only this partner's records."),
    as_json: bool = typer.Option(False, "--json", help="One JSON event per line."),
) -> None:
    """List disclosures (and alerts, config changes, unrouted, withheld and generalised
    records) matching every filter given."""
    from typing import get_args

    from services.core.audit.chain import EventKind, query

    kinds = get_args(EventKind)
    if kind is not None and kind not in kinds:
        raise typer.BadParameter(f"kind must be one of {', '.join(kinds)}", param_hint="--kind")
    settings = Settings()
    ids: set[str] | None = None
    if source_id is not None:
        ids = _ids_for_source(settings, source_id, partner)
        if not ids:
            _err(f"no accepted record has source_id {source_id!r}"
                 + (f" from {partner}" if partner else "")
                 + "; rejected ones are in `s115hub dlq list --source-id`")
    chain = _read(settings)
    found = query([e for e in chain.events if isinstance(e, dict)], record=record, group=group,
                  protocol=protocol, since=_when(since, "--since"), until=_when(until, "--until"),
                  kind=kind)  # type: ignore[arg-type]
    found = [ev for ev in found if (ids is None or ev.hub_record_id in ids)
             and (partner is None or ev.partner == partner)]
    for ev in found:
        if as_json:
            typer.echo(json.dumps(ev.model_dump(mode="json"), sort_keys=True))
            continue
        typer.echo(event_line(ev))
    _err(f"{len(found)} matching events")


def event_line(ev: Any) -> str:
    """One chain event as ``audit query`` prints it."""
    what = (ev.hub_record_id or ev.detail.get("alert_id") or ev.detail.get("action") or "")
    to = ev.recipient or ev.detail.get("subject") or ""
    fields = ",".join(f"{k}:{v}" for k, v in ev.fields.items())
    if ev.kind == "access":  # who read what: the member (or officer) is the point of it
        fields = f"{ev.detail.get('actor', '')} read {ev.detail.get('what', '')}"
    return (f"{ev.seq:>7} {ev.at.isoformat()} {ev.kind:<10} {what} -> {to} "
            f"{ev.protocol or ev.detail.get('protocol') or '-'} {fields}").rstrip()


@audit_app.command("export")
def export(
    out_dir: Path = typer.Argument(..., help="Empty or new directory for the bundle."),
) -> None:
    """Write the whole chain as a signed bundle (events.jsonl, checkpoints.jsonl, manifest.json,
    manifest.sig) that `audit verify --bundle` or any JCS + Ed25519 tool checks offline."""
    from services.core.audit.bundle import export_bundle, public_key_fingerprint
    from services.core.audit.key import load_audit_key

    settings = Settings()
    hub = load_audit_key(settings.resolved_audit_key_file())
    chain = _read(settings)
    bad = [i for i, e in enumerate(chain.events) if not isinstance(e, dict)]
    if bad:
        raise typer.BadParameter(f"event at position {bad[0]} is not JSON; run `audit verify`")
    manifest = export_bundle(chain.events, chain.checkpoints, hub.private, hub.key_id, out_dir)
    typer.echo(f"exported {manifest.event_count} events and {manifest.checkpoint_count} "
               f"checkpoints to {out_dir}; signer {public_key_fingerprint(hub.public)}")


def record_change(action: str, subject: str, detail: dict[str, Any]) -> None:
    """Put a configuration change made by a CLI command on the audit chain (after the change).

    The change has happened by now, so a broker failure must not be silent: say plainly that it
    is unaudited and exit non-zero, so scripts notice.
    """
    from services.core.audit.chain_io import publish_facts
    from services.core.audit.facts import config_fact, default_actor

    settings = Settings()
    fact = config_fact(action, subject, default_actor(), detail=detail)
    try:
        publish_facts(settings, [fact])
    except Exception as exc:  # kafka-python's errors share no base with ours
        _err(f"{action} {subject}: done, but NOT audited: the broker at "
             f"{settings.kafka_bootstrap_servers} did not take the audit fact ({exc})")
        raise typer.Exit(2) from exc
