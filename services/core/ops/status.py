"""The hub's status from durable facts only (issue 16): counts that survive any restart.

Every figure has one source of truth, read back from a topic:

* partners, feeds and groups: the county document on the config topic (so a group with no
  deliveries and a partner that never sent are still listed);
* accepted and last seen: the envelopes on the raw topics (distinct hub record ids);
* rejected: the dead letters on ``s115.rejected`` written by ingest;
* delivered, alerts, unrouted, withheld, generalised: the events of the audit chain;
* protocols: the config topic, judged by the lifecycle code depersonalise uses (given here as
  rows, so this module imports no service).

Pure: the CLI and the officer page fetch, this counts.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from services.core.audit.reconcile import letter_cause

__all__ = ["HubStatus", "ProtocolRow", "build_status", "render_status", "reviews_due"]


@dataclass
class Counts:
    accepted: int = 0
    rejected: int = 0
    unrouted: int = 0
    withheld: int = 0
    generalised: int = 0
    last_seen: datetime | None = None
    rejections: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class ProtocolRow:
    ref: str
    live: bool
    review_by: date | None
    review_due: bool
    reasons: tuple[str, ...] = ()
    retention_days: int | None = None
    parties: tuple[str, ...] = ()


@dataclass
class GroupRow:
    group: str
    deliveries: int = 0
    alerts: int = 0


@dataclass
class HubStatus:
    partners: dict[str, Counts]
    partner_feeds: dict[str, list[str]]
    feeds: dict[str, Counts]
    protocols: list[ProtocolRow]
    groups: dict[str, GroupRow]
    withheld_causes: dict[str, int]
    unrouted_reasons: dict[str, int]
    audit_events: int
    today: date
    review_within_days: int = 30

    def reviews_due(self) -> list[tuple[ProtocolRow, int]]:
        return reviews_due(self.protocols, self.today, self.review_within_days)


def reviews_due(protocols: Iterable[ProtocolRow], today: date, within_days: int
                ) -> list[tuple[ProtocolRow, int]]:
    """(protocol, days until review_by) for each protocol whose review falls within
    ``within_days`` of ``today`` or is already past (negative days), soonest first."""
    out = [(p, (p.review_by - today).days) for p in protocols if p.review_by is not None
           and (p.review_by - today).days <= within_days]
    return sorted(out, key=lambda pd: (pd[1], pd[0].ref))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _get(event: Any, name: str) -> Any:
    return event.get(name) if isinstance(event, Mapping) else getattr(event, name, None)


def build_status(*, partners: Mapping[str, Sequence[str]], groups: Sequence[str],
                 feeds: Sequence[str], envelopes: Iterable[Mapping[str, Any]],
                 letters: Iterable[Mapping[str, Any]], events: Iterable[Any],
                 protocols: Sequence[ProtocolRow], today: date,
                 review_within_days: int = 30) -> HubStatus:
    """Count everything. ``partners`` maps partner id -> its feeds (from the county);
    ``letters`` are dead-letter summaries; ``events`` audit events or their dicts."""
    by_partner: dict[str, Counts] = defaultdict(Counts)
    by_feed: dict[str, Counts] = defaultdict(Counts)
    for p in partners:
        by_partner[p] = Counts()
    for f in feeds:
        by_feed[f] = Counts()
    seen: set[str] = set()
    for env in envelopes:
        rid = str(env.get("hub_record_id"))
        if rid in seen:
            continue  # a resend of the same record is one record
        seen.add(rid)
        at = _when(env.get("received_at"))
        for c in (by_partner[str(env.get("partner"))], by_feed[str(env.get("feed"))]):
            c.accepted += 1
            if at is not None and (c.last_seen is None or at > c.last_seen):
                c.last_seen = at
    late: list[Mapping[str, Any]] = []
    for letter in letters:
        if letter.get("stage", "ingest") != "ingest":
            late.append(letter)  # an accepted record stopped later: counted as withheld below
            continue
        problems = letter.get("problems") or [{}]
        first = problems[0] if isinstance(problems[0], Mapping) else {}
        reason = str(first.get("reason", ""))[:40]
        why = f"{first.get('pointer') or '/'}: {reason}" if reason else "unreadable record"
        for c in (by_partner[str(letter.get("partner"))], by_feed[str(letter.get("feed"))]):
            c.rejected += 1
            c.rejections[why] += 1
    grp: dict[str, GroupRow] = {g: GroupRow(g) for g in groups}
    per_kind: dict[str, set[tuple[str, str]]] = defaultdict(set)
    causes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    n_events = 0
    for ev in events:
        n_events += 1
        kind = _get(ev, "kind")
        if kind in ("disclosure", "alert"):
            to = str(_get(ev, "recipient"))
            row = grp.setdefault(to, GroupRow(to))
            if kind == "disclosure":
                row.deliveries += 1
            else:
                row.alerts += 1
            continue
        if kind not in ("unrouted", "withheld", "generalised"):
            continue
        rid, partner, feed = (str(_get(ev, n)) for n in ("hub_record_id", "partner", "feed"))
        key = (partner, rid)
        if key in per_kind[kind]:
            continue  # one record counts once per kind, however many protocols
        per_kind[kind].add(key)
        detail = _get(ev, "detail") or {}
        if kind == "withheld":
            causes[str(detail.get("cause"))] += 1
        elif kind == "unrouted":
            reasons[str(detail.get("reason"))] += 1
        for c in (by_partner[partner], by_feed[feed]):
            setattr(c, kind, getattr(c, kind) + 1)
    for letter in late:
        owner, late_id = letter.get("partner"), str(letter.get("hub_record_id"))
        if not isinstance(owner, str) or late_id not in seen \
                or (owner, late_id) in per_kind["withheld"]:
            continue
        per_kind["withheld"].add((owner, late_id))
        causes[letter_cause(letter)] += 1
        for c in (by_partner[owner], by_feed[str(letter.get("feed"))]):
            c.withheld += 1
    return HubStatus(dict(by_partner), {p: list(f) for p, f in partners.items()}, dict(by_feed),
                     sorted(protocols, key=lambda r: r.ref), grp, dict(causes), dict(reasons),
                     n_events, today, review_within_days)


def _seen(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "never"


def render_status(st: HubStatus) -> str:
    head = (f"{'accepted':>9} {'rejected':>9} {'unrouted':>9} {'withheld':>9} "
            f"{'generalised':>11}")

    def figures(c: Counts) -> str:
        return (f"{c.accepted:>9} {c.rejected:>9} {c.unrouted:>9} {c.withheld:>9} "
                f"{c.generalised:>11}")

    lines = ["FEEDS", f"  {'feed':<9} {'last record seen (UTC)':<22} {head}  top rejection reasons"]
    for name, c in sorted(st.feeds.items()):
        top = ", ".join(f"{k} {v}" for k, v in c.rejections.most_common(3))
        lines.append(f"  {name:<9} {_seen(c.last_seen):<22} {figures(c)}  {top}".rstrip())
    lines += ["", "PARTNERS", f"  {'partner':<22} {'feeds':<22} {head}"]
    for name, c in sorted(st.partners.items()):
        feeds = ",".join(st.partner_feeds.get(name, [])) or "(not in county)"
        lines.append(f"  {name:<22} {feeds:<22} {figures(c)}")
    if st.unrouted_reasons:
        lines.append("  unrouted by reason: " + ", ".join(
            f"{k} {v}" for k, v in sorted(st.unrouted_reasons.items())))
    if st.withheld_causes:
        lines.append("  withheld by cause: " + ", ".join(
            f"{k} {v}" for k, v in sorted(st.withheld_causes.items())))
    lines += ["", "PROTOCOLS"]
    for p in st.protocols:
        state = "LIVE" if p.live else "BLOCKING"
        due = " review due" if p.review_due else ""
        review = f" review by {p.review_by.isoformat()}" if p.review_by else ""
        why = f" ({'; '.join(p.reasons)})" if p.reasons else ""
        lines.append(f"  {p.ref:<28} {state}{due}{review}{why}")
    if not st.protocols:
        lines.append("  none in the config topic")
    due_soon = st.reviews_due()
    if due_soon:
        lines += ["", f"REVIEWS DUE (within {st.review_within_days} days)"]
        for p, days in due_soon:
            when = f"overdue by {-days} days" if days < 0 else (
                "due today" if days == 0 else f"due in {days} days")
            lines.append(f"  {p.ref:<28} review_by {p.review_by} {when}")
    lines += ["", "GROUPS", f"  {'group':<28} {'deliveries':>10} {'alerts':>7}"]
    for g, row in sorted(st.groups.items()):
        lines.append(f"  {g:<28} {row.deliveries:>10} {row.alerts:>7}")
    lines += ["", f"AUDIT  {st.audit_events} events on the chain (run `s115hub audit verify` "
                  "to check them)"]
    return "\n".join(lines)
