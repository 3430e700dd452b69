"""Audit facts that account for records which reached no one, or reached them coarsened.

Issue 16: "nothing vanishes". A record that the router can send to no group, that no live protocol
lets depersonalise release, or that the risk gate generalised, used to leave only a metric behind,
which a restart forgets and which cannot say *which* record. Each now leaves a fact on the audit
chain, through the same path as disclosures (``s115.audit.facts`` -> the single chainer), so the
reconciliation report (``services/core/audit/reconcile.py``) can answer per record.

The facts hold what the router may see: ids, partner, feed, protocol, category and area codes;
never a field value. Identities are stable per (record, protocol, outcome) so a re-read after a
crash chains once, while a later, different outcome (a protocol signed and the record replayed)
is a new event.

Pure: no broker. ``decide`` functions take plain values, so any loop (the current router and
depersonalise loops, or the stage runner that replaces them) calls them in one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from schemas.shared import SharedRecord
from services.core.crypto.canonical import format_utc

__all__ = ["UNROUTED_REASONS", "accounting_identity", "gate_facts", "generalised_fact",
           "unrouted_fact",
           "unrouted_reason", "withheld_fact"]

#: Why no group received a record (a bounded label, also used in the report).
UNROUTED_REASONS = ("no_area", "no_group")
_DETAIL_MAX = 300


def _at(at: datetime | None) -> str:
    return format_utc(at if at is not None else datetime.now(UTC))


def _base(kind: str, fact_id: str, *, hub_record_id: str, partner: str, feed: str,
          protocol: str | None, at: datetime | None, detail: Mapping[str, Any]
          ) -> dict[str, Any]:
    return {"fact_id": fact_id, "kind": kind, "at": _at(at), "hub_record_id": hub_record_id,
            "partner": partner, "feed": feed, "recipient": None, "protocol": protocol,
            "lawful_basis": None, "fields": {}, "payload_digest": None, "detail": dict(detail)}


def unrouted_reason(rec: SharedRecord) -> str:
    """``no_area``: the record has no ward or district (no location, or outside every boundary
    the hub knows), so no area-based group can match it; ``no_group``: it has an area, but no
    group's subscription covers it under a live protocol that names that group."""
    return "no_area" if rec.ward_code is None and rec.district_code is None else "no_group"


def unrouted_fact(rec: SharedRecord, *, at: datetime | None = None) -> dict[str, Any]:
    """The fact "``rec`` (released under ``rec.protocol``) reached no group"."""
    return _base("unrouted", f"unrouted/{rec.protocol}/{rec.hub_record_id}",
                 hub_record_id=rec.hub_record_id, partner=rec.partner, feed=rec.feed,
                 protocol=rec.protocol, at=at, detail={
                     "reason": unrouted_reason(rec), "category": rec.category,
                     "ward_code": rec.ward_code, "district_code": rec.district_code})


def withheld_fact(hub_record_id: str, partner: str, feed: str, cause: str, why: str = "", *,
                  at: datetime | None = None) -> dict[str, Any]:
    """The fact "no protocol released this record": ``cause`` is a lifecycle cause label
    (``unsigned``, ``expired``, ``revoked``, ``no_protocol``, ``unreadable`` ...), ``why`` the
    officer-readable detail (protocol names and dates, never record content)."""
    return _base("withheld", f"withheld/{cause}/{hub_record_id}", hub_record_id=hub_record_id,
                 partner=partner, feed=feed, protocol=None, at=at,
                 detail={"cause": cause, "why": why[:_DETAIL_MAX]})


def generalised_fact(hub_record_id: str, partner: str, feed: str, protocol: str, action: str,
                     fields: Sequence[str], *, at: datetime | None = None) -> dict[str, Any]:
    """The fact "the risk gate coarsened this record under ``protocol``": ``action`` is
    ``generalise`` (a coarser level released) or ``suppress`` (every quasi-identifier withheld
    down to the district), ``fields`` the quasi-identifiers it changed (names, not values)."""
    return _base("generalised", f"generalised/{protocol}/{hub_record_id}",
                 hub_record_id=hub_record_id, partner=partner, feed=feed, protocol=protocol,
                 at=at, detail={"gate": action, "fields": sorted(fields)})


def gate_facts(hub_record_id: str, partner: str, feed: str,
               gate: Mapping[str, str], changed: Mapping[str, Iterable[str]], *,
               at: datetime | None = None) -> list[dict[str, Any]]:
    """One ``generalised`` fact per protocol whose gate did anything but release or hold (a held
    record is not yet decided; it is released later at ward or coarser level)."""
    return [generalised_fact(hub_record_id, partner, feed, ref, action,
                             list(changed.get(ref, ())), at=at)
            for ref, action in sorted(gate.items()) if action not in ("release", "hold")]


def accounting_identity(kind: str, hub_record_id: str | None, protocol: str | None,
                        detail: Mapping[str, Any]) -> str:
    """The ``fact_id`` of an accounting event, recomputed from its hashed content."""
    if kind == "withheld":
        return f"withheld/{detail.get('cause')}/{hub_record_id}"
    return f"{kind}/{protocol}/{hub_record_id}"
