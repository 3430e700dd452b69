"""The hot-spot engine of issue 17: event-time windows with per-feed watermarks, a negative-binomial
baseline per (ward, category), accumulating evidence and a space-time scan. Pure (no Kafka).

Interface (narrow on purpose; the stage and the benchmark use only this):
``add(events, now) -> alerts``, ``tick(now) -> alerts``, ``to_state()``/``restore(state)``,
``open_counts()``, ``feed_status(now)``, ``dropped()``.

Time
    Every record comes from a partner feed (a partner's police, fire, ... feed; ``Event.source``)
    and each partner feed keeps its own *watermark*: the latest event time it has sent, minus
    ``grace`` for records that arrive slightly out of order. Event times are capped at ``now +
    future_bound`` before they may move it, so a clock running ahead (or one record stamped 23 h
    ahead) cannot make honest records late. Records stamped beyond ``now + max_future`` are
    refused and counted (``refused_future``), never silently dropped.
    A window of a category is *tested* when the watermarks of every partner feed that has sent
    records of the category have passed its end (the slowest decides: one force's fast clock
    closes no window on another force's records), or when the county's event clock (the latest
    watermark of any feed) is the allowed lateness past its end (a silent or late partner cannot
    hold every window open forever). The allowed lateness is the protocol's (``allowed_lateness_
    hours``, set with :meth:`CountEngine.set_lateness`; the category's part before "|" names the
    protocol), else ``allowed_lateness`` (48 h). A window then *settles*: records that arrive
    until the clock is the allowed lateness past its end are still counted into it, and the
    window is re-tested when it retires if they changed it. A record later than that is counted
    into the week history its baseline is fitted from (the window that can still change), and
    counted in ``late_counted`` per partner feed: reported, never dropped. Only a record older
    than the whole history is dropped, and counted (``too_old``).

Baseline (week windows)
    Per cell, the last ``history_weeks`` weekly counts; at each week close every cell of the
    category is refitted at once (:func:`.nb.fit_loglinear`): intercept, a linear trend when the
    cell has ``trend_min_weeks`` of history and the trend is significant (Farrington's rule, and
    never predicting above the largest count seen), and a step from a confirmed level shift.
    Past outbreaks are down-weighted (:func:`.nb.outbreak_weights`), not capped. Dispersion alpha
    is estimated by moments from the cell's own residuals, shrunk towards the category's pooled
    value in proportion to how little the cell's counts say (a sparse cell takes the pool). The
    test is the upper tail with alpha widened by the variance of the fitted log-mean, so a
    baseline fitted on few weeks is trusted less. The tail (``two_level_tail``) is that of
    Poisson counts on a week's level times a short-term level, two gammas with the NB's variance
    between them (:func:`.nb.two_level_upper_p_array`): one NB of the same variance called
    1-in-10,000 null weeks p ~ 1e-5 and they were most of the false alerts at strong
    overdispersion (notes/issue-17.md, i17-tail).

Level shifts
    A cell that alerts is a candidate shift; if the next week is still above the old baseline
    (p < ``shift_confirm_p``) the shift is confirmed and a step term from the alerting week
    absorbs it: the new level is fitted, with its own uncertainty, from the weeks since. A CUSUM
    alarm confirms a shift at once from where its run began. A step change therefore alerts once
    (occasionally twice) and is then the new normal; a one-week spike is not a shift and is
    down-weighted.

Accumulating evidence
    At each week close every cell is also tested on the sum of its last 1..``evidence_weeks``
    weeks that hold no alerted week (:meth:`.closes.WindowTests._week_runs`; a generalised
    likelihood ratio over run lengths, Bonferroni-adjusted for the runs looked at): a sustained
    x1.5-x2 excess is found by its sum and raised once, since the next run starts after it.
    A run (and a scan window) is tested against the prediction made before its first week
    (``frozen_baseline``): the weeks inside it had already raised each later week's prediction,
    and a three-week cluster was scored against a baseline it had lifted by a third.
    A negative-binomial CUSUM per cell (:func:`.nb.nb_cusum_llr`) for a ``cusum_ratio`` excess
    over the baseline; it alarms once when the sum passes ``cusum_threshold`` and restarts.

Day and hour windows
    Expected = the cell's weekly prediction x the category's share of the week in that window
    (an hour-of-week profile pooled over all wards of the category, so day-of-week and hour-of-
    day shapes are both in it). Their dispersion is estimated per category and window kind from
    every closed window's residuals, and their tail is the two-level one, as the week's. A
    ward's burst is raised once a week by these windows: after an hour or day alert, no other
    hour or day alert of that ward until the next week (``one_burst_alert``).

Clusters across wards
    At each week close, :func:`.scan.scan` over the study wards for the last ``scan_weeks``
    weeks; zones are a ward, with any one or two of its neighbours, or with all of them. A
    significant zone is one alert for all its wards with one Monte Carlo p-value; cell alerts
    (window or CUSUM) of its wards in the same close are folded into it. A zone is raised again
    only for a ward that alerted neither last week nor inside the zone's window.

Error rates
    Each window kind gets ``alpha`` scaled by its length (a week alpha, a day alpha/7, an hour
    alpha/168) and Benjamini-Hochberg per category close, so the county's expected false alerts
    per week of time are the same for every window kind.

Everything is deterministic: the scan's random stream is seeded from its category and week.

Modules (split by job): :mod:`.timeline` window arithmetic, :mod:`.engine_config` the event and
the tuning, :mod:`.cells` per-category arrays, :mod:`.baseline` the weekly refit and dispersion,
:mod:`.closes` the tests and alerts, this module counting, watermarks, retirement and snapshots.

Over 400 lines because this docstring is the engine's method statement (80 lines); the code
itself is about 320.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .cells import CategoryCells
from .closes import Window, WindowTests
from .detector import WINDOW_KINDS, Alert
from .engine_config import EngineConfig, Event, check_lateness
from .timeline import hour_of_week, index_of, seconds_of, start_of


@dataclass(slots=True)
class _Feed:
    max_event: int | None = None
    last_arrival: int | None = None
    records: int = 0
    late_counted: int = 0
    refused_future: int = 0
    too_old: int = 0
    feed: str = ""
    partner: str | None = None
    lateness: int = 0  # the longest allowed lateness of the protocols it sends under


class CountEngine:
    """Bounded-state windows, baselines and tests for one county (module docstring)."""

    def __init__(self, config: EngineConfig | None = None, *,
                 adjacency: Mapping[str, frozenset[str]] | None = None,
                 districts: Mapping[str, str] | None = None,
                 wards: Iterable[str] | None = None) -> None:
        self.config = config or EngineConfig()
        self._adjacency = dict(adjacency or {})
        self._districts = dict(districts or {})
        self._study = sorted(wards if wards is not None else self._adjacency)
        self._tests = WindowTests(self.config, self._study, self._adjacency, self._districts)
        self._windows: dict[tuple[str, str, int], Window] = {}
        # Per (kind, category): windows below this index have retired.
        self._retired: dict[tuple[str, str], int] = {}
        self._categories: dict[str, CategoryCells] = {}
        self._feeds: dict[str, _Feed] = {}
        # Window indices per (kind, category), ascending: not yet tested / tested, not retired.
        self._untested: dict[tuple[str, str], list[int]] = {}
        self._settling: dict[tuple[str, str], list[int]] = {}
        self._grace_s = int(self.config.grace.total_seconds())
        self._future_s = int(self.config.future_bound.total_seconds())
        self._max_future_s = int(self.config.max_future.total_seconds())
        self._lateness: dict[str, int] = {}

    def _lateness_s(self, category: str) -> int:
        got = self._lateness.get(category)
        if got is None:
            got = self._lateness[category] = self.config.lateness_of(category)
        return got

    def set_lateness(self, lateness: Mapping[str, timedelta]) -> None:
        """Allowed lateness per protocol id (from the protocols; others keep the default).
        Applies to windows from now on: a window already retired stays retired."""
        for protocol, value in lateness.items():
            check_lateness(value, f"{protocol}.allowed_lateness_hours")
        self.config = replace(self.config, lateness=dict(lateness))
        self._tests.config = self.config
        self._lateness = {}
        for feed in self._feeds.values():
            feed.lateness = 0
        for name, cat in self._categories.items():
            for source in cat.sources:
                src = self._feeds.get(source)
                if src is not None:
                    src.lateness = max(src.lateness, self._lateness_s(name))

    # -- public -------------------------------------------------------------------------------

    def add(self, events: Iterable[Event | tuple[Any, ...]], now: datetime) -> list[Alert]:
        """Count events (arrived by ``now``) and return the alerts of windows they let close."""
        now_s = seconds_of(now)
        for raw in events:
            event = raw if isinstance(raw, Event) else Event(*raw)
            self._count(event, now_s)
        return self.tick(now)

    def see_time(self, feed: str, when: datetime, now: datetime,
                 partner: str | None = None) -> None:
        """A record that is not counted (no ward, not entitled) still shows its feed's clock."""
        t = seconds_of(when)
        now_s = seconds_of(now)
        if t <= now_s + self._max_future_s:
            source = feed if partner is None else f"{partner}/{feed}"
            self._move_watermark(self._feed(source, feed, partner), t, now_s)

    def tick(self, now: datetime) -> list[Alert]:
        """Test and retire every window the watermarks have passed."""
        del now  # time is event time; ``now`` only bounds what a record may claim
        alerts: list[Alert] = []
        clock = self._clock()
        if clock is None:
            return alerts
        due: list[tuple[int, int, str, str, int, bool]] = []
        # Windows of one (kind, category) end in index order, so each walk stops at the first
        # window that is not yet due: a tick costs the windows it closes, not those held open.
        for (kind, cat), untested in self._untested.items():
            own = self._own_watermark(self._categories[cat])
            lateness = self._lateness_s(cat)
            order = -WINDOW_KINDS.index(kind)  # type: ignore[arg-type,unused-ignore]
            for idx in untested:
                end = start_of(kind, idx + 1)
                retire = clock >= end + lateness
                if not (retire or (own is not None and own >= end)):
                    break
                due.append((end, order, kind, cat, idx, retire))
        for (kind, cat), tested in self._settling.items():
            lateness = self._lateness_s(cat)
            order = -WINDOW_KINDS.index(kind)  # type: ignore[arg-type,unused-ignore]
            for idx in tested:
                end = start_of(kind, idx + 1)
                if clock < end + lateness:
                    break
                due.append((end, order, kind, cat, idx, True))
        # Weeks before days before hours at the same end, so a day uses the fresh week model.
        for _end, _o, kind, cat, idx, retire in sorted(due):
            window = self._windows[(kind, cat, idx)]
            kc = (kind, cat)
            if not window.tested:
                window.tested = True
                self._untested[kc].remove(idx)
                alerts += self._tests.test(self._categories.get(cat), kind, cat, idx, window,
                                           list(window.counts))
                if not retire:
                    insort(self._settling.setdefault(kc, []), idx)
            elif window.changed:
                self._settling[kc].remove(idx)
                alerts += self._tests.test(self._categories.get(cat), kind, cat, idx, window,
                                           sorted(window.changed), late=True)
            else:
                self._settling[kc].remove(idx)
            if retire:
                del self._windows[(kind, cat, idx)]
                self._retired[kc] = max(self._retired.get(kc, idx + 1), idx + 1)
        alerts.sort(key=lambda a: (a.window_end, a.window, a.category, a.ward_code))
        return alerts

    def open_counts(self) -> dict[tuple[str, int, str, str], int]:
        """(kind, window index, ward, category) -> count of every window not yet retired."""
        return {(kind, idx, ward, cat): n for (kind, cat, idx), w in self._windows.items()
                for ward, n in w.counts.items()}

    def expected_now(self, ward: str, category: str, kind: str) -> float | None:
        cat = self._categories.get(category)
        if cat is None or cat.hist_weeks < self.config.warmup_weeks or ward not in cat.index:
            return None
        mu = float(cat.pred[cat.index[ward]])
        if kind == "week":
            return mu
        clock = self._clock() or 0
        return mu * cat.share(kind, start_of(kind, index_of(kind, clock)))

    def dispersion(self, category: str) -> dict[str, float]:
        """The dispersion alpha each ward of ``category`` is tested with (week windows)."""
        cat = self._categories.get(category)
        if cat is None:
            return {}
        return {w: float(cat.alpha[i]) for i, w in enumerate(cat.wards)}

    def dispersion_of(self, ward: str, category: str) -> float | None:
        cat = self._categories.get(category)
        if cat is None or ward not in cat.index:
            return None
        return float(cat.alpha[cat.index[ward]])

    def feed_status(self, now: datetime) -> list[dict[str, Any]]:
        """Per partner feed: its watermark, lag behind ``now``, and "ok" / "late" / "silent"."""
        now_s = seconds_of(now)
        out = []
        for _name, feed in sorted(self._feeds.items()):
            lag = None if feed.max_event is None else now_s - feed.max_event
            silent = feed.last_arrival is None or \
                now_s - feed.last_arrival > self.config.silent_after.total_seconds()
            allowed = feed.lateness or int(self.config.allowed_lateness.total_seconds())
            late = lag is not None and lag > allowed
            out.append({
                "feed": feed.feed, "partner": feed.partner, "records": feed.records,
                "watermark": None if feed.max_event is None else datetime.fromtimestamp(
                    feed.max_event, UTC).isoformat(),
                "lag_seconds": lag, "state": "silent" if silent else "late" if late else "ok",
                "late_counted": feed.late_counted, "refused_future": feed.refused_future,
                "too_old": feed.too_old})
        return out

    def dropped(self) -> int:
        """Records counted in no window and no history (refused future, older than history)."""
        return sum(f.refused_future + f.too_old for f in self._feeds.values())

    def late_counted_total(self) -> int:
        return sum(f.late_counted for f in self._feeds.values())

    def state_size(self) -> int:
        cells = sum(len(c.wards) for c in self._categories.values())
        return sum(len(w.counts) for w in self._windows.values()) + cells + len(self._feeds)

    def to_state(self) -> dict[str, Any]:
        return {
            "windows": [[kind, cat, idx, sorted(w.counts.items()), sorted(w.protocols.items()),
                         w.tested, sorted(w.alerted), sorted(w.changed)]
                        for (kind, cat, idx), w in sorted(self._windows.items())],
            "retired": [[k, c, i] for (k, c), i in sorted(self._retired.items())],
            "categories": {name: c.to_state() for name, c in sorted(self._categories.items())},
            "feeds": {name: [f.max_event, f.last_arrival, f.records, f.late_counted,
                             f.refused_future, f.too_old, f.feed, f.partner, f.lateness]
                      for name, f in sorted(self._feeds.items())},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._windows = {}
        for kind, cat, idx, counts, protocols, tested, alerted, changed in state["windows"]:
            self._windows[(kind, cat, int(idx))] = Window(
                {w: int(n) for w, n in counts}, dict(protocols), bool(tested), set(alerted),
                set(changed))
        self._retired = {(k, c): int(i) for k, c, i in state["retired"]}
        self._categories = {name: CategoryCells.from_state(c, self.config.history_weeks)
                            for name, c in state["categories"].items()}
        # A snapshot from before partner feeds (six fields) was keyed by the feed name.
        self._feeds = {name: _Feed(*(v if len(v) > 6 else [*v, name]))
                       for name, v in state["feeds"].items()}
        self._untested, self._settling = {}, {}
        for kind, cat, idx in sorted(self._windows):
            window = self._windows[(kind, cat, idx)]
            lists = self._settling if window.tested else self._untested
            lists.setdefault((kind, cat), []).append(idx)

    # -- counting -----------------------------------------------------------------------------

    def _feed(self, source: str, feed: str, partner: str | None) -> _Feed:
        got = self._feeds.get(source)
        if got is None:
            got = self._feeds[source] = _Feed(feed=feed, partner=partner)
        return got

    def _own_watermark(self, cat: CategoryCells) -> int | None:
        """The event time up to which every partner feed of the category has sent its records
        (the slowest one decides): a partner whose clock runs ahead closes no window early."""
        marks = [self._feeds[s].max_event for s in cat.sources if s in self._feeds]
        if not marks or any(m is None for m in marks):
            return None
        return min(m for m in marks if m is not None) - self._grace_s

    def _clock(self) -> int | None:
        marks = [f.max_event for f in self._feeds.values() if f.max_event is not None]
        return max(marks) if marks else None

    def _move_watermark(self, feed: _Feed, t: int, now_s: int) -> None:
        capped = min(t, now_s + self._future_s)
        feed.max_event = capped if feed.max_event is None else max(feed.max_event, capped)

    def _category(self, name: str, feed: str, week: int) -> CategoryCells:
        cat = self._categories.get(name)
        if cat is None:
            cat = self._categories[name] = CategoryCells(feed, self._study,
                                                     self.config.history_weeks, week)
        return cat

    def _count(self, event: Event, now_s: int) -> None:
        source = event.source
        feed = self._feed(source, event.feed, event.partner)
        feed.last_arrival = now_s if feed.last_arrival is None else max(feed.last_arrival, now_s)
        t = seconds_of(event.when)
        if t > now_s + self._max_future_s:
            feed.refused_future += 1
            return
        feed.records += 1
        week = index_of("week", t)
        cat = self._category(event.category, event.feed, week)
        if source not in cat.sources:
            cat.sources.add(source)
            feed.lateness = max(feed.lateness, self._lateness_s(event.category))
        row = cat.add_ward(event.ward)
        late = False
        kinds = [k for k in self.config.kinds if k in event.kinds]
        for kind in kinds:
            idx = index_of(kind, t)
            key = (kind, event.category, idx)
            window = self._windows.get(key)
            if window is None:
                if idx < self._retired.get((kind, event.category), -math.inf):
                    late = True
                    continue
                window = self._windows[key] = Window()
                insort(self._untested.setdefault((kind, event.category), []), idx)
            window.counts[event.ward] = window.counts.get(event.ward, 0) + 1
            if event.protocol is not None:
                window.protocols[event.ward] = event.protocol
            if window.tested:
                window.changed.add(event.ward)
                if kind == "week":
                    self._history_add(cat, row, idx)
        if "hour" in event.kinds or "day" in event.kinds:
            cat.profile[hour_of_week(t)] += 1.0
        if late:
            # Later than allowed: the week's count still reaches the history the baseline is
            # fitted from (if the week is not yet retired, the window above took it).
            week_held = "week" in kinds and ("week", event.category, week) in self._windows
            if not week_held and not self._history_add(cat, row, week):
                feed.too_old += 1
                self._move_watermark(feed, t, now_s)
                return
            feed.late_counted += 1
        self._move_watermark(feed, t, now_s)

    def _history_add(self, cat: CategoryCells, row: int, week: int) -> bool:
        back = cat.last_week - week
        if week < cat.start_week or back >= min(cat.hist_weeks, cat.hist.shape[1]):
            return False
        if back < 0:
            return True  # not yet in the history: its open window holds it
        cat.hist[row, -1 - back] += 1.0
        return True


__all__ = ["CountEngine", "EngineConfig", "Event"]
