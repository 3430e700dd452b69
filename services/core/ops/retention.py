"""Retention: how long each topic and store may keep what it holds, from the protocols' own
``retention_days`` (issue 16). Pure: the plan; ``retention_io`` applies it.

Which protocols' data each place holds:

* ``raw.<feed>`` and ``inbound.<partner>`` (personal fields, sealed): every protocol covering the
  feed (or one of the partner's feeds);
* ``shared``: every protocol (released records of all of them);
* ``deliver.<group>`` and ``hotspots.<group>``: every protocol naming the group as a recipient;
* ``rejected`` (dead letters, original sealed): every protocol;
* per-day data keys (state directory): every protocol; a key older than the longest retention
  is shredded, which makes anything sealed under it unreadable in every copy and backup.

A topic holds records of several protocols but Kafka keeps one retention per topic, so the plan
sets the *longest* retention among them, and the report names the protocols whose own retention
is shorter (their records are kept longer than they agreed: an officer decides whether to split
the topic or align the protocols). The audit chain and the config topic hold no personal data
and are never shortened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.core.kafka.topics import Topics

__all__ = ["DAY_MS", "ProtocolRetention", "TopicRetention", "data_key_cutoff", "plan"]

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ProtocolRetention:
    ref: str
    retention_days: int
    feeds: tuple[str, ...]
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    days: int
    protocols: tuple[str, ...]  # refs whose data the topic holds
    shorter: tuple[str, ...]  # refs whose own retention is shorter than ``days``
    current_ms: int | None = None  # as the broker reports it; None unknown, -1 forever

    @property
    def ms(self) -> int:
        return self.days * DAY_MS

    @property
    def change_needed(self) -> bool:
        return self.current_ms != self.ms


def _row(topic: str, ps: Sequence[ProtocolRetention]) -> TopicRetention | None:
    if not ps:
        return None
    days = max(p.retention_days for p in ps)
    return TopicRetention(topic, days, tuple(sorted(p.ref for p in ps)),
                          tuple(sorted(p.ref for p in ps if p.retention_days < days)))


def plan(protocols: Iterable[ProtocolRetention], topics: Topics, *, feeds: Sequence[str],
         groups: Sequence[str], partner_feeds: Mapping[str, Sequence[str]]
         ) -> list[TopicRetention]:
    """The retention each data-holding topic must have, with the protocols behind it. Topics
    that hold no protocol's data are left out (nothing to enforce)."""
    ps = list(protocols)
    rows = [_row(topics.raw(f), [p for p in ps if f in p.feeds]) for f in feeds]
    rows += [_row(topics.inbound(partner), [p for p in ps if set(p.feeds) & set(fs)])
             for partner, fs in sorted(partner_feeds.items())]
    rows += [_row(topics.shared, ps), _row(topics.rejected, ps)]
    for g in groups:
        mine = [p for p in ps if g in p.recipients]
        rows += [_row(topics.deliver(g), mine), _row(topics.hotspots(g), mine)]
    return [r for r in rows if r is not None]


def data_key_cutoff(protocols: Iterable[ProtocolRetention], today: date) -> date | None:
    """Data keys of days before this date may be shredded: older than every protocol's
    retention. None when there is no protocol (keep everything until one says otherwise)."""
    days = [p.retention_days for p in protocols]
    return today - timedelta(days=max(days)) if days else None


def render(rows: Sequence[TopicRetention], cutoff: date | None) -> str:
    lines = [f"  {'topic':<44} {'keep (days)':>11} {'now':>10}  protocols"]
    for r in rows:
        now = ("?" if r.current_ms is None else "forever" if r.current_ms < 0
               else f"{r.current_ms / DAY_MS:g}d")
        flag = " *" if r.change_needed else ""
        lines.append(f"  {r.topic:<44} {r.days:>11} {now:>10}  {', '.join(r.protocols)}{flag}")
        if r.shorter:
            lines.append(f"      kept longer than {', '.join(r.shorter)} agreed (a topic has "
                         "one retention)")
    lines.append("  data keys: " + (f"shred keys of days before {cutoff.isoformat()}" if cutoff
                                    else "no protocol, keep all"))
    lines.append("  * differs from the broker's setting: `s115hub retention apply` sets it")
    return "\n".join(lines)
