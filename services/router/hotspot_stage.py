"""The router's hot-spot stage: shared records in, per-group HotspotAlerts out. Pure (no Kafka).

Counting
    A record is counted once, in the cell (ward, protocol id + category), when some group is
    entitled to it (so detection never works on data nobody may receive) and it carries a ward
    and an event time. Cells are per protocol, not only per category, so an alert derives from
    the records of exactly one protocol: it goes only to groups that protocol names, and its
    ``protocol`` field is true of every record behind it.

Event time and precision
    The event time is the released value of the feed's event-time field (``occurred_at``,
    ``reported_at``, ``assault_at``) as the protocol and the risk gate left it:
    an hour ("2026-03-02T14:00:00Z") counts in the hour, day and week windows; a date counts
    only in the week window, because the gate's ladder turns a day into its week's Monday and a
    Monday date cannot say which it is; a month (police.uk), a withheld time or
    ``time_precision: month`` is counted nowhere, since no hour/day/week window can place it.
    Each event carries the window kinds its precision supports.

Watermarks and late records (issue 17)
    The engine (services/router/hotspots/engine.py) keeps a watermark per partner feed (the
    record's ``partner`` and ``feed``), tests a window when the watermarks of every partner feed
    that sends its category have passed it, and keeps it open for late records until the
    county's clock is the protocol's allowed lateness past it (``allowed_lateness_hours`` in the
    protocol, default 48 h; :func:`lateness_by_protocol`); later records go into the week
    history the baselines are fitted from, and are counted per partner feed. Event times
    more than FUTURE_TOLERANCE ahead of the wall clock are refused ("future"); those within it
    are counted but move the clock no further than ``now`` + 15 minutes.

Exactly-once counting across restarts
    The stage keeps, per partition of ``s115.shared``, the next offset it has yet to count, in
    the same snapshot as the detector state. A restart restores a snapshot and resumes reading
    at its offsets; a record below its partition's offset is refused by :meth:`observe`, so a
    replayed batch is never counted twice and nothing after the snapshot is lost. Alerts that a
    replay raises again carry the same ``alert_id`` and are deduplicated by the runner.

Recount
    :func:`recount` counts delivered records (deduplicated by hub record id) with the same
    rules, so "open-window counts equal a recount from the deliveries" is checkable.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from schemas.alert import HotspotAlert
from schemas.event_time import EventTime
from schemas.event_time import event_time as read_event_time
from schemas.shared import SharedRecord
from services.router.hotspots.detector import (
    WINDOW_KINDS,
    Alert,
    DetectorConfig,
    WindowKind,
    window_index,
)
from services.router.hotspots.engine import CountEngine, EngineConfig, Event
from services.router.subscriptions import Subscription

KINDS_BY_PRECISION: dict[str, tuple[WindowKind, ...]] = {
    "hour": ("hour", "day", "week"), "week": ("week",)}
#: Event times this far past the wall clock are wrong clocks: counting one would close every
#: window up to it and make all honest records late.
FUTURE_TOLERANCE = timedelta(days=1)
CELL_SEP = "|"
STATE_VERSION = 2  # 2: one CountEngine (issue 17) instead of a detector per kind


def lateness_by_protocol(protocols: Iterable[Any]) -> dict[str, timedelta]:
    """Protocol id -> allowed lateness, for protocols that set ``allowed_lateness_hours``.

    Protocols without it get the engine's default (48 h). When two live versions of one
    protocol disagree, the longer wins: a record sent under either may be that late.
    """
    out: dict[str, timedelta] = {}
    for protocol in protocols:
        hours = getattr(protocol, "allowed_lateness_hours", None)
        if hours is None:
            continue
        value = timedelta(hours=float(hours))
        out[protocol.id] = max(out.get(protocol.id, value), value)
    return out


def event_time(rec: SharedRecord) -> EventTime | None:  # the hub's one reading, as counted
    return read_event_time(rec.feed, rec.fields, counted=True)


def cell_category(rec: SharedRecord) -> str:
    return f"{rec.protocol.split('@', 1)[0]}{CELL_SEP}{rec.category}"


def split_cell(cell: str) -> tuple[str, str]:
    protocol_id, _, category = cell.partition(CELL_SEP)
    return protocol_id, category


def alert_id(group: str, alert: Alert) -> str:
    basis = "\x1f".join((group, alert.ward_code, alert.category, alert.window,
                         alert.window_start.isoformat()))
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def alert_recipients(alert: Alert, subs: Iterable[Subscription],
                     live: Mapping[str, frozenset[str]]) -> list[str]:
    """Groups that get ``alert``: their areas cover the ward, they subscribe to the category and
    to the protocol, and the live version of that protocol names them. Deny by default."""
    protocol_id, category = split_cell(alert.category)
    named = frozenset().union(*(g for ref, g in live.items()
                                if ref.split("@", 1)[0] == protocol_id))
    return [s.group for s in subs
            if s.group in named and protocol_id in s.protocols
            and s.covers_ward(alert.ward_code, alert.district_code)
            and s.covers_category(category)]


def to_hotspot_alert(alert: Alert, group: str, *, suppress_below: int,
                     ward_names: Mapping[str, str], raised_at: datetime) -> HotspotAlert:
    protocol_id, category = split_cell(alert.category)
    return HotspotAlert(
        alert_id=alert_id(group, alert), group=group, ward_code=alert.ward_code,
        ward_name=ward_names.get(alert.ward_code), district_code=alert.district_code,
        category=category, window=alert.window, window_start=alert.window_start,
        window_end=alert.window_end, count=alert.public_count(suppress_below),
        expected=round(alert.expected, 6), p_value=alert.p_value,
        bh_threshold=alert.bh_threshold, gi_z=alert.gi_z, neighbours=list(alert.neighbours),
        protocol=alert.protocol or f"{protocol_id}@1", raised_at=raised_at,
        method=alert.method, dispersion=alert.dispersion, cluster_wards=list(alert.cluster),
        late=alert.late, why=_public_why(alert, suppress_below) or None)


def _public_why(alert: Alert, suppress_below: int) -> str:
    """The explanation as it may leave the hub: with a suppressed count the sentence must not
    state it, so it is rebuilt around the public count."""
    if not alert.why or alert.count >= suppress_below:
        return alert.why
    return alert.why.replace(f"{alert.count} incidents", f"fewer than {suppress_below} incidents",
                             1)


RECENT_IDS = 10_000  # five times the default batch of a depersonalise consumer


@dataclass
class ObserveResult:
    counted: bool
    # "counted", "replayed", "duplicate", "no_ward", "no_event_time", "future", "not_entitled"
    reason: str
    alerts: list[Alert] = field(default_factory=list)


class HotspotStage:
    """The county's :class:`~services.router.hotspots.engine.CountEngine` plus the offsets and
    record ids already counted. The runner needs only :meth:`observe` (or :meth:`add` for a
    batch), :meth:`to_state`/:meth:`restore` and the read-outs below."""

    def __init__(self, config: DetectorConfig | None = None, *,
                 adjacency: Mapping[str, frozenset[str]] | None = None,
                 districts: Mapping[str, str] | None = None,
                 wards: Iterable[str] | None = None,
                 kinds: tuple[WindowKind, ...] = WINDOW_KINDS,
                 engine: EngineConfig | None = None) -> None:
        base = config or DetectorConfig()
        self.config = base
        if engine is None:
            # The old tuning knobs still mean what they said: the error rate per close and how
            # many weeks of history come before any test.
            engine = EngineConfig(kinds=kinds, alpha=base.alpha,
                                  warmup_weeks=max(3, base.warmup("week")
                                                   if "week" in base.window_kinds else 6))
        self.engine = CountEngine(engine, adjacency=adjacency, districts=districts,
                                  wards=list(wards) if wards is not None else None)
        self._districts = dict(districts or {})
        self.offsets: dict[int, int] = {}
        self.counted = 0
        # A depersonalise crash re-emits its last uncommitted batch onto s115.shared with new
        # offsets; those copies arrive within a few batches of the originals. Remembering the
        # last RECENT_IDS record ids (bounded, and saved with the snapshot) keeps them from being
        # counted twice without making state grow with records.
        self.recent: dict[str, None] = {}

    def observe(self, rec: SharedRecord, partition: int, offset: int, *, entitled: bool,
                now: datetime) -> ObserveResult:
        if offset < self.offsets.get(partition, 0):
            return ObserveResult(False, "replayed")
        self.offsets[partition] = offset + 1
        if rec.hub_record_id in self.recent:
            return ObserveResult(False, "duplicate")
        self.recent[rec.hub_record_id] = None
        if len(self.recent) > RECENT_IDS:
            del self.recent[next(iter(self.recent))]
        got = event_time(rec)
        if got is None:
            return ObserveResult(False, "no_event_time")
        when, precision = got
        if when > now + FUTURE_TOLERANCE:
            return ObserveResult(False, "future")
        if not entitled or rec.ward_code is None:
            # Not counted, but its time is real: it proves earlier windows of its feed are over.
            # Without this a week whose next records all lost their ward never closes.
            self.engine.see_time(rec.feed, when, now, partner=rec.partner)
            return ObserveResult(False, "not_entitled" if not entitled else "no_ward",
                                 self.engine.tick(now))
        event = Event(rec.ward_code, cell_category(rec), rec.feed, when,
                      KINDS_BY_PRECISION[precision], rec.protocol, rec.partner)
        alerts = self.engine.add([event], now)
        self.counted += 1
        return ObserveResult(True, "counted", alerts)

    def add(self, records: Iterable[tuple[SharedRecord, int, int, bool]],
            now: datetime) -> list[Alert]:
        """A batch of (record, partition, offset, entitled): the alerts it raises."""
        alerts: list[Alert] = []
        for rec, partition, offset, entitled in records:
            alerts += self.observe(rec, partition, offset, entitled=entitled, now=now).alerts
        return alerts

    def set_lateness(self, lateness: Mapping[str, timedelta]) -> None:
        """Allowed lateness per protocol id (see :func:`lateness_by_protocol`)."""
        self.engine.set_lateness(lateness)

    def late_events(self) -> int:
        """Records counted nowhere (stamped too far ahead, or older than the whole history).
        Records merely late are counted (into a settling window or the history)."""
        return self.engine.dropped()

    def feed_status(self, now: datetime) -> list[dict[str, Any]]:
        """Per feed: watermark, lag, "ok"/"late"/"silent", late and refused counts (for the
        page note and the metrics)."""
        return self.engine.feed_status(now)

    def district_of(self, ward: str) -> str | None:
        return self._districts.get(ward)

    def state_size(self) -> int:
        return self.engine.state_size()

    def open_counts(self) -> dict[tuple[str, int, str, str], int]:
        """(kind, window index, ward, protocol id|category) -> count of windows not retired."""
        return self.engine.open_counts()

    def current(self, kind: WindowKind = "week") -> list[dict[str, Any]]:
        """Open-window count and expected count per (ward, protocol id, category), for pages."""
        latest: dict[tuple[str, str], tuple[int, int]] = {}
        for (k, index, ward, cell), count in self.engine.open_counts().items():
            if k == kind and index >= latest.get((ward, cell), (index, 0))[0]:
                latest[(ward, cell)] = (index, count)
        rows = []
        for (ward, cell), (index, count) in sorted(latest.items()):
            protocol_id, category = split_cell(cell)
            rows.append({"ward_code": ward, "protocol_id": protocol_id, "category": category,
                         "window": kind, "window_index": index, "count": count,
                         "expected": self.engine.expected_now(ward, cell, kind),
                         # The NB alpha this cell is tested with (variance mu + alpha mu^2).
                         "dispersion": self.engine.dispersion_of(ward, cell)})
        return rows

    def to_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "offsets": {str(p): o for p, o in self.offsets.items()},
                "counted": self.counted, "recent": list(self.recent),
                "engine": self.engine.to_state()}

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            return  # an unknown layout is ignored: the stage recounts from the start instead
        self.offsets = {int(p): int(o) for p, o in state["offsets"].items()}
        self.counted = int(state.get("counted", 0))
        self.recent = dict.fromkeys(state.get("recent", []))
        self.engine.restore(state["engine"])


def recount(records: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, int, str, str]]:
    """(kind, window index, ward, protocol id|category) counts of delivered records, each hub
    record once, by the stage's own rules (entitlement is implied: they were delivered)."""
    seen: set[str] = set()
    counts: Counter[tuple[str, int, str, str]] = Counter()
    for raw in records:
        rec = SharedRecord.model_validate(raw)
        if rec.hub_record_id in seen:
            continue
        seen.add(rec.hub_record_id)
        got = event_time(rec)
        if rec.ward_code is None or got is None:
            continue
        when, precision = got
        for kind in KINDS_BY_PRECISION[precision]:
            counts[(kind, window_index(kind, when), rec.ward_code, cell_category(rec))] += 1
    return counts
