"""Audit *facts*: what producers (router, CLI) say happened, before it is chained.

A hash chain needs exactly one writer, but disclosures happen in the router (which alone knows the
recipient group) and configuration changes happen in the CLI. So producers publish unchained facts
on ``s115.audit.facts`` and a single chainer (``services/router/audit_sink.py``) appends each new
fact to ``s115.audit`` as a chained event.

A fact carries an identity (``fact_id``) so a re-emitted fact is recognisable and chained once:

* a disclosure is ``disclosure/<group>/<hub record id>`` (the router delivers a record to a group
  at most once, so a router restart that re-reads a batch produces the same identity);
* an alert is ``alert/<group>/<alert id>`` (alert ids are stable per group, ward, category, window);
* a configuration change is ``config/<sha256 of its content>``, its time included, so a retried
  send of the same change is chained once but applying a document twice is two events.

Pure: no broker, no clock unless ``at`` is omitted. Facts are plain JSON-ready dicts; the keys
other than ``fact_id`` are exactly the keyword arguments of ``ChainWriter.append`` (with ``at``
as an ISO-8601 string), so the chainer never has to interpret them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import yaml
from pydantic import BaseModel

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.audit.accounting import accounting_identity
from services.core.audit.chain import ACCOUNTING_KINDS, AuditEvent
from services.core.audit.errors import AuditError
from services.core.crypto.canonical import canonical_bytes, format_utc

__all__ = [
    "CONFIG_ACTIONS", "access_fact", "alert_fact", "config_fact", "config_facts_for", "decode_fact",
    "default_actor",
    "disclosure_fact", "encode_fact", "event_identity", "fact_append_kwargs", "fact_key",
    "payload_digest", "protocol_terms",
]

#: Configuration changes the hub audits (``detail["action"]`` of a config event).
CONFIG_ACTIONS = frozenset({
    "protocol.applied", "protocol.removed", "protocol.signed", "protocol.revoked",
    "protocol.reinstated", "partner.added", "partner.revoked", "county.applied",
    "officer.added", "officer.removed", "keys.shredded", "retention.applied",
    "officer.signed_in", "officer.action",
    # A group member's own credential, and what a member read (page, stream, export, records,
    # pack): reads are audited as events too, so "who saw what" is on the same chain as
    # "who was sent what". See services/router/web/access_audit.py.
    "group.member.issued", "group.member.revoked", "group.read",
})

_APPEND_KEYS = frozenset({
    "kind", "at", "hub_record_id", "partner", "feed", "recipient", "protocol", "lawful_basis",
    "fields", "payload_digest", "detail",
})
# Separates the several lawful bases of a protocol in the event's single lawful_basis string.
_BASIS_SEP = "; "


class _FieldRuleLike(Protocol):
    @property
    def transform(self) -> str: ...


class _FeedRulesLike(Protocol):
    @property
    def fields(self) -> Mapping[str, _FieldRuleLike]: ...


class ProtocolLike(Protocol):
    """What the builders need of ``services.protocols.protocol.Protocol`` (duck-typed, so the
    shared package does not import the depersonalise service)."""

    @property
    def lawful_basis(self) -> list[str]: ...

    @property
    def feeds(self) -> Mapping[str, _FeedRulesLike]: ...


def payload_digest(payload: Mapping[str, Any] | BaseModel) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical JSON of what was released.

    For a record, pass the JSON as delivered (``json.loads(message.value)``): an inspector holding
    the delivered message recomputes the same digest with any JCS library.
    """
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def protocol_terms(protocol: ProtocolLike, feed: str) -> tuple[list[str], dict[str, str]]:
    """(lawful basis, field -> transform) of ``protocol`` for ``feed``, dropped fields excluded."""
    rules = protocol.feeds.get(feed)
    transforms = ({name: rule.transform for name, rule in rules.fields.items()
                   if rule.transform != "drop"} if rules is not None else {})
    return list(protocol.lawful_basis), transforms


def _at(at: datetime | None) -> str:
    when = at if at is not None else datetime.now(UTC)
    if when.tzinfo is None or when.utcoffset() is None:
        raise AuditError("an audit fact's time must be timezone-aware")
    return format_utc(when)


def _basis(lawful_basis: Sequence[str] | str | None) -> str | None:
    if lawful_basis is None:
        return None
    if isinstance(lawful_basis, str):
        return lawful_basis.strip() or None
    joined = _BASIS_SEP.join(b.strip() for b in lawful_basis if b.strip())
    return joined or None


def disclosure_fact(rec: SharedRecord, group: str, *, lawful_basis: Sequence[str] | str,
                    transforms: Mapping[str, str], at: datetime | None = None,
                    released: Mapping[str, Any] | None = None,
                    digest: str | None = None) -> dict[str, Any]:
    """The fact "``rec`` was released to ``group`` under ``rec.protocol``".

    ``transforms`` maps protocol field names to transforms (``protocol_terms``); only the fields
    actually present in ``rec.fields`` are recorded, since an absent value was not disclosed. A
    released field the protocol does not name is recorded as ``"unknown"`` rather than omitted,
    so the gap is visible to the inspector. ``released`` is the payload as delivered (defaults to
    the record's JSON form) and is digested, never stored. ``digest``, when given, is
    ``payload_digest(released)`` already computed: one record goes to several groups with the same
    bytes, and canonicalising it once per group was measurable router CPU.
    """
    if not group:
        raise AuditError(f"record {rec.hub_record_id}: a disclosure needs a recipient group")
    basis = _basis(lawful_basis)
    if basis is None:
        raise AuditError(f"record {rec.hub_record_id}, field lawful_basis: protocol "
                         f"{rec.protocol} gives no lawful basis")
    fields = {name: str(transforms.get(name, "unknown")) for name in sorted(rec.fields)}
    return {
        "fact_id": f"disclosure/{group}/{rec.hub_record_id}",
        "kind": "disclosure",
        "at": _at(at),
        "hub_record_id": rec.hub_record_id,
        "partner": rec.partner,
        "feed": rec.feed,
        "recipient": group,
        "protocol": rec.protocol,
        "lawful_basis": basis,
        "fields": fields,
        "payload_digest": digest if digest is not None else payload_digest(
            released if released is not None else rec),
        "detail": {"category": rec.category, "released_at": format_utc(rec.released_at)},
    }


def alert_fact(alert: HotspotAlert, *, group: str | None = None,
               lawful_basis: Sequence[str] | str | None = None,
               at: datetime | None = None,
               released: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fact "``alert`` was sent to its group". ``group`` defaults to ``alert.group``.

    An alert releases counts, not records, so ``fields`` names the alert's data fields with the
    way each was derived, and ``detail`` says which ward, category and window it concerns.
    """
    to = group or alert.group
    return {
        "fact_id": f"alert/{to}/{alert.alert_id}",
        "kind": "alert",
        "at": _at(at),
        "hub_record_id": None,
        "partner": None,
        "feed": None,
        "recipient": to,
        "protocol": alert.protocol,
        "lawful_basis": _basis(lawful_basis),
        "fields": {"count": "count-suppressed", "expected": "baseline-ewma",
                   "p_value": "poisson-tail", "gi_z": "getis-ord-gi", "ward_code": "area-ward"},
        "payload_digest": payload_digest(released if released is not None else alert),
        "detail": {
            "alert_id": alert.alert_id, "ward_code": alert.ward_code,
            "category": alert.category, "window": alert.window,
            "window_start": format_utc(alert.window_start), "count": alert.count,
        },
    }


def config_fact(action: str, subject: str, actor: str, *, protocol: str | None = None,
                at: datetime | None = None, detail: Mapping[str, Any] | None = None,
                ) -> dict[str, Any]:
    """The fact "``actor`` did ``action`` to ``subject``" (e.g. protocol.signed, police-district@1,
    officer@herts-police). ``protocol`` (id@version) makes the event findable by ``audit query
    --protocol``; ``detail`` adds JSON-ready context such as a document digest or key id."""
    if action not in CONFIG_ACTIONS:
        known = ", ".join(sorted(CONFIG_ACTIONS))
        raise AuditError(f"unknown config action {action!r} (known: {known})")
    if not subject or not actor:
        raise AuditError(f"config fact {action}: subject and actor must not be empty")
    when = _at(at)
    body: dict[str, Any] = {**dict(detail or {}), "action": action, "subject": subject,
                            "actor": actor, "requested_at": when}
    if protocol is not None:
        body["protocol"] = protocol
    fact: dict[str, Any] = {
        "kind": "config", "at": when, "hub_record_id": None, "partner": None, "feed": None,
        "recipient": None, "protocol": None, "lawful_basis": None, "fields": {},
        "payload_digest": None, "detail": body,
    }
    try:
        identity = _config_identity(fact)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"config fact {action} on {subject}: detail cannot be hashed: "
                         f"{exc}") from exc
    return {"fact_id": identity, **fact}


def _config_identity(body: Mapping[str, Any]) -> str:
    detail = body.get("detail") or {}
    if detail.get("action") == "protocol.signed":
        # A signature is one event however often the signed document is re-applied.
        return f"config/protocol.signed/{detail.get('protocol')}/{detail.get('key_id')}"
    # Without ``at``: the chainer stamps the event's time, so the identity must not depend on it.
    # The producer's time stays in ``detail["requested_at"]``, so applying a document twice is
    # still two events while a retried send of one change is one.
    return "config/" + hashlib.sha256(canonical_bytes(
        {k: v for k, v in body.items() if k != "at"})).hexdigest()


def access_fact(group: str, actor: str, what: str, *, at: datetime | None = None,
                detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fact "``actor`` (a group member) read ``what`` of ``group``'s data" (page, stream,
    export.csv, export.geojson, records, pack.pdf, pack.html). Published by the router on the
    facts topic: a read is not a configuration change, so it needs no officer topic. Each read is
    its own event (the producer's time is in ``detail["requested_at"]``)."""
    if not group or not actor or not what:
        raise AuditError("an access fact needs a group, an actor and what was read")
    when = _at(at)
    fact: dict[str, Any] = {
        "kind": "access", "at": when, "hub_record_id": None, "partner": None, "feed": None,
        "recipient": group, "protocol": None, "lawful_basis": None, "fields": {},
        "payload_digest": None,
        "detail": {**dict(detail or {}), "action": "group.read", "actor": actor,
                   "what": what, "requested_at": when},
    }
    try:
        identity = _content_identity("access", fact)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"access fact {what} of {group}: detail cannot be hashed: "
                         f"{exc}") from exc
    return {"fact_id": identity, **fact}


def _content_identity(prefix: str, body: Mapping[str, Any]) -> str:
    # Without ``at``: the chainer stamps the event's time (see _config_identity).
    return f"{prefix}/" + hashlib.sha256(canonical_bytes(
        {k: v for k, v in body.items() if k != "at"})).hexdigest()


def event_identity(event: AuditEvent) -> str:
    """The ``fact_id`` of the fact ``event`` was chained from, recomputed from hashed content only.

    The chainer recovers its dedupe set from the chain with this, so a key on the audit topic
    (which no hash covers) can never make it skip or repeat a fact.
    """
    if event.kind == "disclosure":
        return f"disclosure/{event.recipient}/{event.hub_record_id}"
    if event.kind == "alert":
        return f"alert/{event.recipient}/{event.detail.get('alert_id')}"
    if event.kind == "access":
        return _content_identity("access", event.model_dump(exclude={"seq", "prev_hash", "hash"}))
    if event.kind in ACCOUNTING_KINDS:
        return accounting_identity(event.kind, event.hub_record_id, event.protocol, event.detail)
    return _config_identity(event.model_dump(exclude={"seq", "prev_hash", "hash"}))


def config_facts_for(messages: Iterable[tuple[str, Mapping[str, Any] | None]], actor: str, *,
                     at: datetime | None = None) -> list[dict[str, Any]]:
    """The config facts implied by publishing ``messages`` (key, value) to the config topic.

    Signatures are read from each applied protocol's YAML and recorded once each (by protocol and
    key id): signing happens offline, so applying the signed document is where the hub learns of
    it. Partner credentials are audited by the commands that change them, not here.
    """
    out: list[dict[str, Any]] = []
    for key, value in messages:
        kind, _, name = key.partition("/")
        if kind == "county" and value is not None:
            out.append(config_fact("county.applied", "county", actor, at=at, detail={
                "partners": sorted(str(p.get("id")) for p in value.get("partners", [])),
                "groups": sorted(str(g.get("id")) for g in value.get("groups", [])),
                "digest": payload_digest(value)}))
        elif kind == "protocol" and value is None:
            out.append(config_fact("protocol.removed", name, actor, protocol=name, at=at))
        elif kind == "protocol" and value is not None:
            text = str(value.get("yaml", ""))
            out.append(config_fact("protocol.applied", name, actor, protocol=name, at=at, detail={
                "source": str(value.get("source", "")),
                "sha256": hashlib.sha256(text.encode()).hexdigest()}))
            out += [config_fact("protocol.signed", name, f"{sig['officer']}@{sig['party']}",
                                protocol=name, at=at,
                                detail={"key_id": str(sig["key_id"]), "party": str(sig["party"])})
                    for sig in _signatures(text)]
        elif kind == "revoked":
            action = "protocol.revoked" if value is not None else "protocol.reinstated"
            why = {"reason": str(value.get("reason", ""))} if value else {}
            out.append(config_fact(action, name, actor, protocol=name, at=at, detail=why))
        elif kind == "officer":
            action = "officer.added" if value is not None else "officer.removed"
            out.append(config_fact(action, name, actor, at=at, detail={
                "party": str(value.get("party", "")), "officer": str(value.get("officer", "")),
                # Who vouched for the key (services/core/crypto/officer_trust.py): "genesis" for the
                # first set, else the countersigning officer@party.
                "countersigned_by": str(value.get("countersigned_by", ""))}
                if value else {}))
    return out


def _signatures(text: str) -> list[dict[str, Any]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return []  # the protocol loader reports the document itself
    sigs = doc.get("signatures") if isinstance(doc, dict) else None
    return [s for s in sigs or [] if isinstance(s, dict)
            and {"party", "officer", "key_id"} <= s.keys()]


def default_actor() -> str:
    """``user@host`` of whoever runs the command, when no officer is named."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def fact_key(fact: Mapping[str, Any]) -> bytes:
    return str(fact["fact_id"]).encode()


def encode_fact(fact: Mapping[str, Any]) -> bytes:
    # Facts are parsed, never hashed as sent, so any JSON will do; orjson is ~4x faster than
    # json.dumps and the router encodes about two facts per record (issue 12). What orjson
    # refuses (a non-str key, an int beyond 64 bits) goes to json as before.
    try:
        return orjson.dumps(fact, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(fact, sort_keys=True, separators=(",", ":")).encode()


def decode_fact(value: bytes | None) -> dict[str, Any]:
    """Parse a fact from the topic. Raises AuditError naming what is wrong."""
    if not value:
        raise AuditError("audit fact: empty message")
    try:
        fact = json.loads(value)
    except ValueError as exc:
        raise AuditError(f"audit fact: not JSON ({exc})") from exc
    if not isinstance(fact, dict) or not isinstance(fact.get("fact_id"), str):
        raise AuditError("audit fact: missing fact_id")
    unknown = set(fact) - _APPEND_KEYS - {"fact_id"}
    if unknown:
        raise AuditError(f"audit fact {fact['fact_id']}: unknown keys {sorted(unknown)}")
    return fact


def fact_append_kwargs(fact: Mapping[str, Any], *, stamp: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``ChainWriter.append`` from a fact (``stamp=False``: without
    ``at``, which the chainer then sets from its own clock)."""
    kw = {k: v for k, v in fact.items() if k in _APPEND_KEYS}
    if not stamp:
        kw.pop("at", None)
        return kw
    try:
        kw["at"] = datetime.fromisoformat(str(fact["at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError) as exc:
        raise AuditError(f"audit fact {fact.get('fact_id')}, field at: not an ISO time") from exc
    return kw
