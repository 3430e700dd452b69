"""Reconciliation: what became of each record a partner sent in a period, by its own reference.

Built only from durable topics, so it gives the same answer after any restart:

* accepted: the envelopes on ``s115.raw.<feed>`` (partner, ``source_id``, hub record id, time);
* rejected: the dead letters on ``s115.rejected`` (ingest's carry the ``source_id`` when it was
  usable, see ``services/ingest/records.rejected_source_id``);
* delivered (to whom, under which protocol), unrouted, withheld and generalised: the events of
  the audit chain, joined on the hub record id.

An accepted record with no outcome on the chain yet is ``pending``: still in flight, or processed
before the hub accounted for every outcome. The window is half-open, ``start <= t < end``, on the
time the hub received (or rejected) the record.

Pure: the CLI and the officer page fetch, this decides.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["CSV_COLUMNS", "Reconciliation", "Row", "reconcile", "to_csv"]

#: Outcomes, in the order a report lists them.
OUTCOMES = ("delivered", "unrouted", "withheld", "pending", "rejected")
CSV_COLUMNS = ("source_id", "feed", "outcome", "received_at", "hub_record_id", "delivered_to",
               "protocols", "generalised", "withheld_cause", "unrouted_reason", "rejection_id",
               "rejection_reasons", "replayed_as")


@dataclass
class Row:
    source_id: str
    feed: str
    received_at: datetime
    hub_record_id: str | None = None
    delivered_to: set[str] = field(default_factory=set)
    protocols: set[str] = field(default_factory=set)
    generalised: dict[str, str] = field(default_factory=dict)  # protocol -> gate action
    #: The quasi-identifiers the gate changed under any protocol (names, not values).
    gate_fields: set[str] = field(default_factory=set)
    withheld_cause: str | None = None
    unrouted_reason: str | None = None
    rejection_id: str | None = None
    rejection_reasons: str = ""
    rejected: bool = False
    #: Hub record ids a rejected record was replayed as (``dlq replay``); that record has its
    #: own row, under the time it was replayed.
    replayed_as: tuple[str, ...] = ()

    @property
    def outcome(self) -> str:
        if self.rejected:
            return "rejected"
        if self.delivered_to:
            return "delivered"
        if self.unrouted_reason:
            return "unrouted"
        if self.withheld_cause:
            return "withheld"
        return "pending"

    def as_csv(self) -> dict[str, str]:
        return {
            "source_id": self.source_id, "feed": self.feed, "outcome": self.outcome,
            "received_at": self.received_at.isoformat(),
            "hub_record_id": self.hub_record_id or "",
            "delivered_to": ";".join(sorted(self.delivered_to)),
            "protocols": ";".join(sorted(self.protocols)),
            "generalised": ";".join(f"{p}:{a}" for p, a in sorted(self.generalised.items())),
            "withheld_cause": self.withheld_cause or "",
            "unrouted_reason": self.unrouted_reason or "",
            "rejection_id": self.rejection_id or "",
            "rejection_reasons": self.rejection_reasons,
            "replayed_as": ";".join(self.replayed_as),
        }


@dataclass
class Reconciliation:
    partner: str
    start: datetime
    end: datetime
    rows: list[Row]

    @property
    def counts(self) -> dict[str, int]:
        """accepted, rejected, one per outcome, and generalised (records coarsened)."""
        by = Counter(r.outcome for r in self.rows)
        out = {"accepted": sum(1 for r in self.rows if not r.rejected),
               "rejected": by["rejected"]}
        out.update({o: by[o] for o in OUTCOMES if o != "rejected"})
        out["generalised"] = sum(1 for r in self.rows if r.generalised)
        return out

    @property
    def per_group(self) -> dict[str, int]:
        """Records delivered to each group."""
        c: Counter[str] = Counter()
        for r in self.rows:
            c.update(r.delivered_to)
        return dict(sorted(c.items()))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _get(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else getattr(event, name, None)


def reconcile(partner: str, start: datetime, end: datetime, *,
              envelopes: Iterable[Mapping[str, Any]], letters: Iterable[Mapping[str, Any]],
              events: Iterable[Any]) -> Reconciliation:
    """The report for ``partner`` over ``[start, end)``.

    ``envelopes`` are raw-topic envelopes (dicts with hub_record_id, partner, feed, source_id,
    received_at), ``letters`` dead-letter summaries (``DeadLetter.summary()``), ``events`` audit
    events (``AuditEvent`` or their dicts), in chain order.
    """
    rows: dict[str, Row] = {}
    for env in envelopes:
        at = _when(env.get("received_at"))
        rid = env.get("hub_record_id")
        if env.get("partner") != partner or at is None or not isinstance(rid, str) \
                or not start <= at < end:
            continue
        seen = rows.get(rid)
        if seen is None or at < seen.received_at:  # a resend keeps the first arrival
            rows[rid] = Row(str(env.get("source_id", "")), str(env.get("feed", "")), at, rid)
    rejected: list[Row] = []
    for letter in letters:
        at = _when(letter.get("rejected_at"))
        if letter.get("partner") != partner or at is None or not start <= at < end:
            continue
        reasons = "; ".join(f"{p.get('pointer') or '/'}: {p.get('reason', '')}"
                            for p in letter.get("problems", []) if isinstance(p, Mapping))
        rid = letter.get("hub_record_id")
        if letter.get("stage", "ingest") != "ingest":
            # A later stage's letter is about an accepted record (unreadable in depersonalise,
            # say): noted on its row; the accounting event on the chain gives the outcome.
            if isinstance(rid, str) and rid in rows:
                late = rows[rid]
                late.rejection_id = str(letter.get("rejection_id"))
                late.rejection_reasons = reasons
                late.withheld_cause = late.withheld_cause or letter_cause(letter)
            continue
        rejected.append(Row(str(letter.get("source_id") or ""), str(letter.get("feed", "")), at,
                            rejection_id=str(letter.get("rejection_id")),
                            rejection_reasons=reasons, rejected=True,
                            replayed_as=tuple(str(x) for x in letter.get("replayed") or ()
                                              if x)))
    for ev in events:
        row = rows.get(str(_get(ev, "hub_record_id")))
        if row is None:
            continue
        kind, protocol = _get(ev, "kind"), _get(ev, "protocol")
        detail = _get(ev, "detail") or {}
        if kind == "disclosure":
            row.delivered_to.add(str(_get(ev, "recipient")))
            row.protocols.add(str(protocol))
        elif kind == "unrouted":
            row.unrouted_reason = str(detail.get("reason", "unknown"))
            row.protocols.add(str(protocol))
        elif kind == "withheld":
            row.withheld_cause = str(detail.get("cause", "unknown"))
        elif kind == "generalised":
            row.generalised[str(protocol)] = str(detail.get("gate", "generalise"))
            row.gate_fields.update(str(f) for f in detail.get("fields") or ())
    for row in rows.values():
        # The gate, not the partner's geocoding, took the place away: say so, or the officer
        # would send the partner chasing a location problem it does not have.
        if row.unrouted_reason == "no_area" and "location" in row.gate_fields:
            row.unrouted_reason = "location_withheld"
    ordered = sorted([*rows.values(), *rejected], key=lambda r: (r.received_at, r.source_id))
    return Reconciliation(partner, start, end, ordered)


def letter_cause(letter: Mapping[str, Any]) -> str:
    """Why a later stage stopped an accepted record, as a withheld cause: ``unreadable`` (sealed
    fields could not be opened: data key shredded, or tampered), else ``dead-lettered:<stage>``."""
    problems = letter.get("problems") or []
    first = problems[0] if problems and isinstance(problems[0], Mapping) else {}
    if str(first.get("reason", "")).startswith("unreadable"):
        return "unreadable"
    return f"dead-lettered:{letter.get('stage')}"


def _cell(value: str) -> str:
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(rec: Reconciliation) -> str:
    """One line per record, in the columns of ``CSV_COLUMNS``, to send back to the partner."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rec.rows:
        w.writerow({k: _cell(v) for k, v in row.as_csv().items()})
    return buf.getvalue()


def render(rec: Reconciliation) -> str:
    """The summary an officer reads on screen."""
    c = rec.counts
    lines = [f"RECONCILIATION {rec.partner}  {rec.start.isoformat()} .. {rec.end.isoformat()}",
             f"  accepted {c['accepted']}  rejected {c['rejected']}",
             f"  delivered {c['delivered']}  unrouted {c['unrouted']}  withheld {c['withheld']}"
             f"  pending {c['pending']}  generalised {c['generalised']}"]
    if rec.per_group:
        lines.append("  delivered to: " + ", ".join(f"{g} {n}" for g, n in
                                                     rec.per_group.items()))
    return "\n".join(lines)
