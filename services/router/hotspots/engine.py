"""The hot-spot engine of issue 17: event-time windows with per-feed watermarks, a negative-binomial
baseline per (ward, category), accumulating evidence and a space-time scan. Pure (no Kafka).

Interface (narrow on purpose; the stage and the benchmark use only this):
``add(events, now) -> alerts``, ``tick(now) -> alerts``, ``to_state()``/``restore(state)``,
``open_counts()``, ``feed_status(now)``, ``dropped()``.

Time
    Every record belongs to a feed (police, fire, ...) and every category to the feed its records
    come from. A feed's *watermark* is the latest event time it has sent, minus ``grace`` for
    records that arrive slightly out of order; event times are capped at ``now +
    future_bound`` before they may move it, so a clock running ahead (or one record stamped 23 h
    ahead) cannot make honest records late. Records stamped beyond ``now + max_future`` are
    refused and counted (``refused_future``), never silently dropped.
    A window of a category is *tested* when its feed's watermark passes its end, or when the
    county's event clock (the latest watermark of any feed) is ``allowed_lateness`` past its end
    (a silent or late feed cannot hold every window open forever). It then *settles*: records
    that arrive until the clock is ``allowed_lateness`` past its end are still counted into it,
    and the window is re-tested when it retires if they changed it. A record later than that is
    counted into the week history its baseline is fitted from (the window that can still
    change), and counted in ``late_counted`` per feed: reported, never dropped. Only a record
    older than the whole history is dropped, and counted (``too_old``).

Baseline (week windows)
    Per cell, the last ``history_weeks`` weekly counts; at each week close every cell of the
    category is refitted at once (:func:`.nb.fit_loglinear`): intercept, a linear trend when the
    cell has ``trend_min_weeks`` of history and the trend is significant (Farrington's rule, and
    never predicting above the largest count seen), and a step from a confirmed level shift.
    Past outbreaks are down-weighted (:func:`.nb.outbreak_weights`), not capped. Dispersion alpha
    is estimated by moments from the cell's own residuals, shrunk towards the category's pooled
    value in proportion to how little the cell's counts say (a sparse cell takes the pool). The
    test is the NB upper tail with alpha widened by the variance of the fitted log-mean, so a
    baseline fitted on few weeks is trusted less.

Level shifts
    A cell that alerts is a candidate shift; if the next week is still above the old baseline
    (p < ``shift_confirm_p``) the shift is confirmed and a step term from the alerting week
    absorbs it: the new level is fitted, with its own uncertainty, from the weeks since. A CUSUM
    alarm confirms a shift at once from where its run began. A step change therefore alerts once
    (occasionally twice) and is then the new normal; a one-week spike is not a shift and is
    down-weighted.

Accumulating evidence
    A negative-binomial CUSUM per cell (:func:`.nb.nb_cusum_llr`) for a ``cusum_ratio`` excess
    over the baseline; it alarms once when the sum passes ``cusum_threshold`` and restarts.

Day and hour windows
    Expected = the cell's weekly prediction x the category's share of the week in that window
    (an hour-of-week profile pooled over all wards of the category, so day-of-week and hour-of-
    day shapes are both in it). Their dispersion is estimated per category and window kind from
    every closed window's residuals.

Clusters across wards
    At each week close, :func:`.scan.scan` over the study wards for the last ``scan_weeks``
    weeks. A significant zone is one alert for all its wards with one Monte Carlo p-value; cell
    alerts (window or CUSUM) of its wards in the same close are folded into it.

Error rates
    Each window kind gets ``alpha`` scaled by its length (a week alpha, a day alpha/7, an hour
    alpha/168) and Benjamini-Hochberg per category close, so the county's expected false alerts
    per week of time are the same for every window kind.

Everything is deterministic: the scan's random stream is seeded from its category and week.

Over 400 lines because watermarks, the negative-binomial baseline, CUSUM and the scan share one
state that is snapshotted and restored as a unit.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np

from services.core.config.errors import ConfigError

from .detector import WINDOW_KINDS, Alert, WindowKind
from .explain import explain
from .getis_ord import gi_star
from .nb import (
    fit_loglinear,
    moment_dispersion,
    nb_cusum_llr,
    nb_upper_p,
    nb_upper_p_array,
    outbreak_weights,
    pearson,
    pooled_alpha,
    shrunk_alpha,
)
from .scan import build_zones, scan
from .stats import benjamini_hochberg

_EPOCH_WEEK_SHIFT = 3 * 86400
_LEN = {"hour": 3600, "day": 86400, "week": 7 * 86400}
_HOW = 168


def _index(kind: str, seconds: int) -> int:
    if kind == "week":
        seconds += _EPOCH_WEEK_SHIFT
    return seconds // _LEN[kind]


def _start(kind: str, index: int) -> int:
    return index * _LEN[kind] - (_EPOCH_WEEK_SHIFT if kind == "week" else 0)


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1))


def _hour_of_week(seconds: int) -> int:
    return ((seconds + _EPOCH_WEEK_SHIFT) // 3600) % _HOW


class Event(NamedTuple):
    ward: str
    category: str
    feed: str
    when: datetime
    kinds: tuple[str, ...] = WINDOW_KINDS
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tuning; every default is explained in the module docstring or notes/issue-17.md."""

    kinds: tuple[WindowKind, ...] = WINDOW_KINDS
    alpha: float = 0.01
    min_count: int = 3
    history_weeks: int = 26
    warmup_weeks: int = 6
    trend_min_weeks: int = 20
    #: |z| a trend needs before it is extrapolated (a spurious one predicts a false low).
    trend_z: float = 3.0
    allowed_lateness: timedelta = timedelta(hours=48)
    #: Per-feed override of allowed_lateness (from the protocols).
    lateness: Mapping[str, timedelta] = field(default_factory=dict)
    grace: timedelta = timedelta(hours=2)
    future_bound: timedelta = timedelta(minutes=15)
    max_future: timedelta = timedelta(days=1)
    silent_after: timedelta = timedelta(hours=48)
    cusum_ratio: float = 2.0
    cusum_threshold: float = 7.5
    #: Factor on the estimated alpha of hour and day windows (see _close_short).
    short_tail: float = 2.0
    shift_confirm_p: float = 0.05
    scan_weeks: int = 3
    scan_replicates: int = 399
    scan_level: float = 0.01
    #: Weight of the category's pooled dispersion, in weeks of a cell's own counts.
    pool_weeks: float = 20.0
    #: Decay per week close of the hour-of-week profile and the day/hour dispersion sums.
    profile_decay: float = 0.9

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"must be in (0, 1), got {self.alpha}", field="alpha")
        if self.allowed_lateness < timedelta(0):
            raise ConfigError("must be >= 0", field="allowed_lateness")
        if self.warmup_weeks < 3 or self.history_weeks < self.warmup_weeks:
            raise ConfigError("need 3 <= warmup_weeks <= history_weeks", field="warmup_weeks")
        if not self.kinds or any(k not in _LEN for k in self.kinds):
            raise ConfigError(f"must be a non-empty subset of {WINDOW_KINDS}", field="kinds")

    def lateness_of(self, feed: str) -> int:
        return int(self.lateness.get(feed, self.allowed_lateness).total_seconds())


@dataclass(slots=True)
class _Window:
    counts: dict[str, int] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)
    tested: bool = False
    alerted: set[str] = field(default_factory=set)
    # Wards whose count changed after the test (late records); re-tested when it retires.
    changed: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Feed:
    max_event: int | None = None
    last_arrival: int | None = None
    records: int = 0
    late_counted: int = 0
    refused_future: int = 0
    too_old: int = 0


class _Category:
    """Per-category arrays, one row per ward (study wards first, outside wards appended)."""

    def __init__(self, feed: str, wards: Sequence[str], history: int, start_week: int) -> None:
        self.feed = feed
        self.wards = list(wards)
        self.index = {w: i for i, w in enumerate(self.wards)}
        self.start_week = start_week
        self.last_week = start_week - 1  # newest closed (tested) week
        self.hist = np.zeros((len(self.wards), history))
        self.hist_weeks = 0
        self.alpha = np.full(len(self.wards), 0.1)
        self.alpha_pool = 0.1
        self.pred = np.zeros(len(self.wards))  # predicted mean of week last_week + 1
        self.pred_v = np.zeros(len(self.wards))  # variance of its log
        self.shift = np.full(len(self.wards), -1, dtype=np.int64)  # absolute week of a step
        self.pending = np.full(len(self.wards), -1, dtype=np.int64)
        self.cusum = np.zeros(len(self.wards))
        self.cusum_from = np.full(len(self.wards), -1, dtype=np.int64)
        self.last_alert = np.full(len(self.wards), -10, dtype=np.int64)
        self.recent_mu = np.zeros((len(self.wards), 0))  # predictions of the last scan weeks
        self.recent_a = np.zeros((len(self.wards), 0))
        self.profile = np.zeros(_HOW)
        self.disp: dict[str, list[float]] = {}  # kind -> [num, den] decayed moment sums

    def add_ward(self, ward: str) -> int:
        i = self.index.get(ward)
        if i is not None:
            return i
        i = self.index[ward] = len(self.wards)
        self.wards.append(ward)
        self.hist = np.vstack([self.hist, np.zeros((1, self.hist.shape[1]))])
        self.alpha = np.append(self.alpha, self.alpha_pool)
        self.pred = np.append(self.pred, float(self.pred.mean()) if len(self.pred) else 0.0)
        self.pred_v = np.append(self.pred_v, 1.0)
        for name in ("shift", "pending", "cusum_from"):
            setattr(self, name, np.append(getattr(self, name), -1))
        self.cusum = np.append(self.cusum, 0.0)
        self.last_alert = np.append(self.last_alert, -10)
        self.recent_mu = np.vstack([self.recent_mu, np.zeros((1, self.recent_mu.shape[1]))])
        self.recent_a = np.vstack([self.recent_a, np.zeros((1, self.recent_a.shape[1]))])
        return i

    def share(self, kind: str, start_s: int) -> float:
        """Share of a week's events expected in the window of ``kind`` starting at start_s."""
        prior = self.profile + max(self.profile.sum(), 1.0) / _HOW * 0.05
        total = prior.sum()
        h = _hour_of_week(start_s)
        if kind == "hour":
            return float(prior[h] / total)
        return float(prior[h:h + 24].sum() / total)

    _ARRAYS = ("hist", "alpha", "pred", "pred_v", "shift", "pending", "cusum", "cusum_from",
               "last_alert", "recent_mu", "recent_a", "profile")

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).tolist() for name in self._ARRAYS}
        # Counts are whole numbers: as ints the history is a third of its JSON size.
        state["hist"] = self.hist.astype(np.int64).tolist()
        state.update(feed=self.feed, wards=self.wards, start_week=self.start_week,
                     last_week=self.last_week, hist_weeks=self.hist_weeks,
                     alpha_pool=self.alpha_pool, disp=self.disp)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any], history: int) -> _Category:
        self = cls(state["feed"], state["wards"], history, int(state["start_week"]))
        self.last_week = int(state["last_week"])
        self.hist_weeks = int(state["hist_weeks"])
        self.alpha_pool = float(state["alpha_pool"])
        self.disp = {k: [float(a), float(b)] for k, (a, b) in state["disp"].items()}
        n = len(self.wards)
        for name in self._ARRAYS:
            dtype = np.int64 if name in ("shift", "pending", "cusum_from", "last_alert") else float
            value = np.asarray(state[name], dtype=dtype)
            if name in ("recent_mu", "recent_a", "hist"):
                value = value.reshape(n, -1)
            setattr(self, name, value)
        return self


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
        self._zones, self._zone_matrix = build_zones(self._study, self._adjacency)
        self._windows: dict[tuple[str, str, int], _Window] = {}
        # Per (kind, category): windows below this index have retired.
        self._retired: dict[tuple[str, str], int] = {}
        self._categories: dict[str, _Category] = {}
        self._feeds: dict[str, _Feed] = {}
        # Window indices per (kind, category), ascending: not yet tested / tested, not retired.
        self._untested: dict[tuple[str, str], list[int]] = {}
        self._settling: dict[tuple[str, str], list[int]] = {}
        self._grace_s = int(self.config.grace.total_seconds())
        self._future_s = int(self.config.future_bound.total_seconds())
        self._max_future_s = int(self.config.max_future.total_seconds())
        self._lateness: dict[str, int] = {}

    def _lateness_s(self, feed: str) -> int:
        got = self._lateness.get(feed)
        if got is None:
            got = self._lateness[feed] = self.config.lateness_of(feed)
        return got

    # -- public -------------------------------------------------------------------------------

    def add(self, events: Iterable[Event | tuple[Any, ...]], now: datetime) -> list[Alert]:
        """Count events (arrived by ``now``) and return the alerts of windows they let close."""
        now_s = _seconds(now)
        for raw in events:
            event = raw if isinstance(raw, Event) else Event(*raw)
            self._count(event, now_s)
        return self.tick(now)

    def see_time(self, feed: str, when: datetime, now: datetime) -> None:
        """A record that is not counted (no ward, not entitled) still shows the feed's clock."""
        t = _seconds(when)
        now_s = _seconds(now)
        if t <= now_s + self._max_future_s:
            self._move_watermark(self._feed(feed), t, now_s)

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
            feed = self._feeds[self._categories[cat].feed]
            own = None if feed.max_event is None else feed.max_event - self._grace_s
            lateness = self._lateness_s(self._categories[cat].feed)
            order = -WINDOW_KINDS.index(kind)  # type: ignore[arg-type,unused-ignore]
            for idx in untested:
                end = _start(kind, idx + 1)
                retire = clock >= end + lateness
                if not (retire or (own is not None and own >= end)):
                    break
                due.append((end, order, kind, cat, idx, retire))
        for (kind, cat), tested in self._settling.items():
            lateness = self._lateness_s(self._categories[cat].feed)
            order = -WINDOW_KINDS.index(kind)  # type: ignore[arg-type,unused-ignore]
            for idx in tested:
                end = _start(kind, idx + 1)
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
                alerts += self._test(kind, cat, idx, window, list(window.counts))
                if not retire:
                    insort(self._settling.setdefault(kc, []), idx)
            elif window.changed:
                self._settling[kc].remove(idx)
                alerts += self._test(kind, cat, idx, window, sorted(window.changed), late=True)
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
        return mu * cat.share(kind, _start(kind, _index(kind, clock)))

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
        """Per feed: its watermark, lag behind ``now``, and "ok" / "late" / "silent"."""
        now_s = _seconds(now)
        out = []
        for name, feed in sorted(self._feeds.items()):
            lag = None if feed.max_event is None else now_s - feed.max_event
            silent = feed.last_arrival is None or \
                now_s - feed.last_arrival > self.config.silent_after.total_seconds()
            late = lag is not None and lag > self.config.lateness_of(name)
            out.append({
                "feed": name, "records": feed.records,
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
                             f.refused_future, f.too_old]
                      for name, f in sorted(self._feeds.items())},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._windows = {}
        for kind, cat, idx, counts, protocols, tested, alerted, changed in state["windows"]:
            self._windows[(kind, cat, int(idx))] = _Window(
                {w: int(n) for w, n in counts}, dict(protocols), bool(tested), set(alerted),
                set(changed))
        self._retired = {(k, c): int(i) for k, c, i in state["retired"]}
        self._categories = {name: _Category.from_state(c, self.config.history_weeks)
                            for name, c in state["categories"].items()}
        self._feeds = {name: _Feed(*v) for name, v in state["feeds"].items()}
        self._untested, self._settling = {}, {}
        for kind, cat, idx in sorted(self._windows):
            window = self._windows[(kind, cat, idx)]
            lists = self._settling if window.tested else self._untested
            lists.setdefault((kind, cat), []).append(idx)

    # -- counting -----------------------------------------------------------------------------

    def _feed(self, name: str) -> _Feed:
        feed = self._feeds.get(name)
        if feed is None:
            feed = self._feeds[name] = _Feed()
        return feed

    def _cat_feed(self, category: str) -> str:
        cat = self._categories.get(category)
        return cat.feed if cat is not None else ""

    def _clock(self) -> int | None:
        marks = [f.max_event for f in self._feeds.values() if f.max_event is not None]
        return max(marks) if marks else None

    def _move_watermark(self, feed: _Feed, t: int, now_s: int) -> None:
        capped = min(t, now_s + self._future_s)
        feed.max_event = capped if feed.max_event is None else max(feed.max_event, capped)

    def _category(self, name: str, feed: str, week: int) -> _Category:
        cat = self._categories.get(name)
        if cat is None:
            cat = self._categories[name] = _Category(feed, self._study,
                                                     self.config.history_weeks, week)
        return cat

    def _count(self, event: Event, now_s: int) -> None:
        feed = self._feed(event.feed)
        feed.last_arrival = now_s if feed.last_arrival is None else max(feed.last_arrival, now_s)
        t = _seconds(event.when)
        if t > now_s + self._max_future_s:
            feed.refused_future += 1
            return
        feed.records += 1
        week = _index("week", t)
        cat = self._category(event.category, event.feed, week)
        row = cat.add_ward(event.ward)
        late = False
        kinds = [k for k in self.config.kinds if k in event.kinds]
        for kind in kinds:
            idx = _index(kind, t)
            key = (kind, event.category, idx)
            window = self._windows.get(key)
            if window is None:
                if idx < self._retired.get((kind, event.category), -math.inf):
                    late = True
                    continue
                window = self._windows[key] = _Window()
                insort(self._untested.setdefault((kind, event.category), []), idx)
            window.counts[event.ward] = window.counts.get(event.ward, 0) + 1
            if event.protocol is not None:
                window.protocols[event.ward] = event.protocol
            if window.tested:
                window.changed.add(event.ward)
                if kind == "week":
                    self._history_add(cat, row, idx)
        if "hour" in event.kinds or "day" in event.kinds:
            cat.profile[_hour_of_week(t)] += 1.0
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

    def _history_add(self, cat: _Category, row: int, week: int) -> bool:
        back = cat.last_week - week
        if week < cat.start_week or back >= min(cat.hist_weeks, cat.hist.shape[1]):
            return False
        if back < 0:
            return True  # not yet in the history: its open window holds it
        cat.hist[row, -1 - back] += 1.0
        return True

    # -- testing ------------------------------------------------------------------------------

    def _test(self, kind: str, name: str, idx: int, window: _Window, wards: list[str],
              late: bool = False) -> list[Alert]:
        cat = self._categories.get(name)
        if cat is None:
            return []
        if kind == "week":
            if late:
                return self._retest_week(cat, name, idx, window, wards)
            return self._close_week(cat, name, idx, window)
        return self._close_short(kind, cat, name, idx, window, wards, late)

    def _family_alpha(self, kind: str) -> float:
        return self.config.alpha * _LEN[kind] / _LEN["week"]

    def _close_short(self, kind: str, cat: _Category, name: str, idx: int, window: _Window,
                     wards: list[str], late: bool) -> list[Alert]:
        start = _start(kind, idx)
        share = cat.share(kind, start)
        n = len(cat.wards)
        y = np.zeros(n)
        for ward, count in window.counts.items():
            y[cat.index[ward]] = count
        mu = np.maximum(cat.pred * share, 1e-6)
        num, den = cat.disp.get(kind, [0.0, 0.0])
        warm = cat.hist_weeks >= self.config.warmup_weeks
        alerts: list[Alert] = []
        if warm:
            a_kind = max(0.0, num / den) if den > 0 else float(cat.alpha_pool)
            # The moment estimate matches the variance of short windows but not their tail: a
            # day's rate is a week's random level times a day's, heavier-tailed than one NB of
            # the same variance. Doubling alpha brought the day and hour false-alert rates of
            # bench/hotspot_sim.py's strong world to their nominal level (notes/issue-17.md).
            alpha = self.config.short_tail * np.maximum(a_kind, cat.alpha) + cat.pred_v
            rows = [cat.index[w] for w in wards if window.counts.get(w, 0) >= self.config.min_count]
            p = nb_upper_p_array(y[rows], mu[rows], alpha[rows]) if rows else np.array([])
            result = benjamini_hochberg(list(p), self._family_alpha(kind), family_size=max(n, 1))
            for j, hit in enumerate(result.rejected):
                i = rows[j]
                ward = cat.wards[i]
                if not hit or ward in window.alerted:
                    continue
                window.alerted.add(ward)
                alerts.append(self._alert(kind, name, ward, start, start + _LEN[kind],
                                          int(y[i]), float(mu[i]), float(p[j]),
                                          result.threshold, "nb-window", float(alpha[i]),
                                          window.protocols.get(ward), late=late))
            if not late:
                decay = self.config.profile_decay ** (_LEN[kind] / _LEN["week"])
                cat.disp[kind] = [num * decay + float(((y - mu) ** 2 - mu).sum()),
                                  den * decay + float((mu * mu).sum())]
        return alerts

    def _retest_week(self, cat: _Category, name: str, idx: int, window: _Window,
                     wards: list[str]) -> list[Alert]:
        # Late records changed a tested week: the baseline it was tested against is the
        # prediction stored for it in recent_mu (if still held).
        back = cat.last_week - idx
        if back < 0 or back >= cat.recent_mu.shape[1]:
            return []
        col = cat.recent_mu.shape[1] - 1 - back
        alerts = []
        for ward in wards:
            i = cat.index[ward]
            y = window.counts.get(ward, 0)
            mu, a = float(cat.recent_mu[i, col]), float(cat.recent_a[i, col])
            if ward in window.alerted or y < self.config.min_count or mu <= 0:
                continue
            p = nb_upper_p(y, mu, a)
            threshold = self._family_alpha("week") / max(len(cat.wards), 1)
            if p <= threshold:
                window.alerted.add(ward)
                start = _start("week", idx)
                alerts.append(self._alert("week", name, ward, start, start + _LEN["week"], y,
                                          mu, p, threshold, "nb-window", a,
                                          window.protocols.get(ward), late=True))
        return alerts

    def _close_week(self, cat: _Category, name: str, idx: int, window: _Window) -> list[Alert]:
        cfg = self.config
        n = len(cat.wards)
        # Weeks with no records at all still happened: fold them in as zero weeks first.
        while cat.last_week < idx - 1:
            self._append_week(cat, np.zeros(n), cat.last_week + 1)
        y = np.zeros(n)
        for ward, count in window.counts.items():
            y[cat.index[ward]] = count
        alerts: list[Alert] = []
        start = _start("week", idx)
        end = start + _LEN["week"]
        warm = cat.hist_weeks >= cfg.warmup_weeks
        mu = np.maximum(cat.pred, 1e-6)
        alpha = cat.alpha + cat.pred_v
        cell_hits: dict[int, dict[str, Any]] = {}
        if warm:
            rows = np.flatnonzero(y >= cfg.min_count)
            p = nb_upper_p_array(y[rows], mu[rows], alpha[rows])
            result = benjamini_hochberg(list(p), self._family_alpha("week"), family_size=n)
            for j, rejected in enumerate(result.rejected):
                if rejected:
                    cell_hits[int(rows[j])] = {"method": "nb-window", "p": float(p[j]),
                                               "threshold": result.threshold, "from": idx}
            # Shift confirmation: last week alerted and this week is still above the old level.
            confirm = np.flatnonzero(cat.pending == idx - 1)
            if len(confirm):
                pc = nb_upper_p_array(y[confirm], mu[confirm], alpha[confirm])
                for ci, pi in zip(confirm.tolist(), pc.tolist(), strict=True):
                    if pi < cfg.shift_confirm_p:
                        cat.shift[ci] = idx - 1
            cat.pending[:] = -1
            # CUSUM.
            llr = nb_cusum_llr(y, mu, alpha, cfg.cusum_ratio)
            started = (cat.cusum <= 0) & (llr > 0)
            cat.cusum_from[started] = idx
            cat.cusum = np.maximum(0.0, cat.cusum + llr)
            for i in np.flatnonzero(cat.cusum > cfg.cusum_threshold).tolist():
                since = int(cat.cusum_from[i])
                ys, ms = self._since(cat, i, since, idx, y, mu)
                pc_ = nb_upper_p(ys, ms, float(alpha[i]))
                prior_hit = cell_hits.get(i)
                if prior_hit is None:
                    cell_hits[i] = {"method": "nb-cusum", "p": pc_, "threshold": 0.0,
                                    "from": since, "evidence": float(cat.cusum[i])}
                else:
                    prior_hit["evidence"] = float(cat.cusum[i])
                    prior_hit["method"] = "nb-window+cusum"
                cat.shift[i] = since
                cat.cusum[i] = 0.0
            for i in cell_hits:
                if cat.shift[i] != idx and cat.shift[i] < idx - 1:
                    cat.pending[i] = idx
        clusters = []
        if warm and cat.recent_mu.shape[1] >= 1 and len(self._study) > 1:
            weeks = min(cfg.scan_weeks, cat.recent_mu.shape[1] + 1, cat.hist_weeks + 1)
            ns = len(self._study)
            obs = np.column_stack([cat.hist[:ns, cat.hist.shape[1] - (weeks - 1):]
                                   if weeks > 1 else np.zeros((ns, 0)), y[:ns]])
            exp_ = np.column_stack([cat.recent_mu[:ns, cat.recent_mu.shape[1] - (weeks - 1):]
                                    if weeks > 1 else np.zeros((ns, 0)), mu[:ns]])
            # Conditioned on the county's total each week, as the space-time permutation scan
            # is: a county-wide trend or recording change is no cluster, and without this the
            # big zones summed the small shortfall of every ward's baseline into significance.
            ratio = obs.sum(axis=0) / np.maximum(exp_.sum(axis=0), 1e-9)
            exp_ = exp_ * np.where(ratio > 0, ratio, 1.0)[None, :]
            clusters = scan(obs, np.maximum(exp_, 1e-6), alpha[:ns], self._zones,
                            self._zone_matrix, self._study, seed_key=f"{name}/{idx}",
                            replicates=cfg.scan_replicates, level=cfg.scan_level)
        covered: set[int] = set()
        for cl in clusters:
            rows_ = [cat.index[w] for w in cl.wards]
            fresh = [i for i in rows_ if cat.last_alert[i] < idx - 1]
            if len(cl.wards) == 1 and rows_[0] in cell_hits:
                continue  # one ward: its own cell alert says it with more detail
            if not fresh:
                covered.update(rows_)
                continue
            covered.update(rows_)
            cstart = start - (cl.weeks - 1) * _LEN["week"]
            centre = cl.wards[0]
            alerts.append(self._alert(
                "week", name, centre, cstart, end, cl.observed, cl.expected, cl.p_value,
                cfg.scan_level, "scan", float(np.mean(alpha[rows_])),
                window.protocols.get(centre) or next(
                    (window.protocols[w] for w in cl.wards if w in window.protocols), None),
                cluster=tuple(w for w in cl.wards[1:]), weeks=cl.weeks,
                evidence=cl.score))
            for i in rows_:
                cat.last_alert[i] = idx
                if i not in cell_hits and y[i] > mu[i] and cat.shift[i] < idx - 1:
                    cat.pending[i] = idx
        for i, hit in sorted(cell_hits.items()):
            if i in covered:
                continue
            ward = cat.wards[i]
            cat.last_alert[i] = idx
            window.alerted.add(ward)
            since = int(hit["from"])
            ys, ms = self._since(cat, i, since, idx, y, mu)
            alerts.append(self._alert(
                "week", name, ward, _start("week", since), end, ys, ms, hit["p"],
                hit["threshold"], hit["method"], float(alpha[i]), window.protocols.get(ward),
                weeks=idx - since + 1, evidence=hit.get("evidence")))
        if alerts and self._adjacency:
            # Gi* of the Pearson residuals, kept as evidence: is the excess spatially grouped?
            ns = len(self._study)
            resid = (y[:ns] - mu[:ns]) / np.sqrt(mu[:ns] + alpha[:ns] * mu[:ns] ** 2)
            gi = gi_star(dict(zip(self._study, resid.tolist(), strict=True)), self._adjacency,
                         areas=self._study)
            alerts = [replace(a, gi_z=gi.get(a.ward_code)) for a in alerts]
        self._append_week(cat, y, idx)
        return alerts

    @staticmethod
    def _since(cat: _Category, i: int, since: int, idx: int, y: np.ndarray,
               mu: np.ndarray) -> tuple[int, float]:
        """Observed and expected count of cell ``i`` from week ``since`` to ``idx``."""
        back = min(idx - since, cat.hist_weeks)
        past = float(cat.hist[i, cat.hist.shape[1] - back:].sum()) if back > 0 else 0.0
        return int(y[i] + past), float(mu[i]) * (back + 1)

    def _append_week(self, cat: _Category, y: np.ndarray, idx: int) -> None:
        """Fold week ``idx`` into the history and refit every cell for week idx + 1."""
        cfg = self.config
        cat.hist = np.roll(cat.hist, -1, axis=1)
        cat.hist[:, -1] = y
        cat.hist_weeks = min(cat.hist_weeks + 1, cat.hist.shape[1])
        keep = max(cfg.scan_weeks - 1, 1)
        cat.recent_mu = np.column_stack([cat.recent_mu, np.maximum(cat.pred, 1e-6)])[:, -keep:]
        cat.recent_a = np.column_stack([cat.recent_a, cat.alpha + cat.pred_v])[:, -keep:]
        cat.last_week = idx
        if cat.profile.any():
            cat.profile *= cfg.profile_decay
        self._refit(cat)

    def _refit(self, cat: _Category) -> None:
        cfg = self.config
        n, h = cat.hist.shape
        t_len = cat.hist_weeks
        if t_len == 0:
            return
        weeks = np.arange(cat.last_week - h + 1, cat.last_week + 1)  # absolute week per column
        valid = np.zeros((n, h))
        valid[:, h - t_len:] = 1.0
        t = (weeks - (cat.last_week + 1)) / 10.0
        step = (weeks[None, :] >= cat.shift[:, None]) & (cat.shift[:, None] >= 0)
        has_step = (cat.shift >= 0) & (cat.shift > cat.last_week - t_len)
        x = np.zeros((n, h, 3))
        x[:, :, 0] = 1.0
        x[:, :, 2] = step * has_step[:, None]
        can_trend = t_len >= cfg.trend_min_weeks
        # Half an event of pseudo-count spread over the history (a Jeffreys-like prior): a ward
        # with no events yet gets a small positive rate with honest uncertainty, not mu = 0.
        y = cat.hist + valid * (0.5 / t_len)
        prior = valid
        beta = cov = None
        for rep in range(2):  # fit; estimate alpha; refit with past outbreaks down-weighted
            xt = x.copy()
            if can_trend:
                xt[:, :, 1] = t[None, :] * valid
            bt, ct = fit_loglinear(y, xt, prior, cat.alpha)
            b0, c0 = fit_loglinear(y, x, prior, cat.alpha)
            use_trend = np.zeros(n, dtype=bool)
            if can_trend:
                z = bt[:, 1] / np.sqrt(np.maximum(ct[:, 1, 1], 1e-12))
                pred_t = np.exp(bt[:, 0] + bt[:, 2] * has_step)
                ceiling = (y * valid).max(axis=1)
                use_trend = (np.abs(z) >= cfg.trend_z) & (pred_t <= np.maximum(ceiling, 1.0))
            beta = np.where(use_trend[:, None], bt, b0)
            cov = np.where(use_trend[:, None, None], ct, c0)
            xf = np.where(use_trend[:, None, None], xt, x)
            mu_fit = np.exp(np.clip((xf @ beta[:, :, None])[:, :, 0], -20, 12))
            if rep == 0:
                self._estimate_alpha(cat, y, mu_fit, valid, use_trend, has_step, t_len)
                # Residuals on the dispersion just estimated: with the previous (or initial)
                # alpha, ordinary heavy-tailed weeks looked like outbreaks and were dropped,
                # which pulled the baseline below the truth.
                prior = valid * outbreak_weights(pearson(y, mu_fit, cat.alpha[:, None]))
        assert beta is not None
        assert cov is not None
        x_new = np.stack([np.ones(n), np.zeros(n), has_step.astype(float)], axis=1)
        eta = (x_new * beta).sum(1)
        cat.pred = np.exp(np.clip(eta, -20, 12))
        v = ((cov @ x_new[:, :, None])[:, :, 0] * x_new).sum(1)
        # The fitted mean is uncertain: a log-normal error of variance v in it adds
        # (e^v - 1) mu^2 to the variance of the count, i.e. e^v - 1 to alpha.
        cat.pred_v = np.expm1(np.minimum(v, 5.0))

    def _estimate_alpha(self, cat: _Category, y: np.ndarray, mu_fit: np.ndarray,
                        valid: np.ndarray, use_trend: np.ndarray, has_step: np.ndarray,
                        t_len: int) -> None:
        cfg = self.config
        params = 1 + use_trend.astype(float) + has_step.astype(float)
        # Dispersion from every week at full weight: the down-weighted weeks are exactly the
        # heavy tail alpha describes, and leaving them out made alpha too small (more false
        # alerts at strong overdispersion in bench/hotspot_sim.py).
        num, den = moment_dispersion(y, mu_fit, valid, params)
        cat.alpha_pool = pooled_alpha(num, den)
        mean_mu = (mu_fit * valid).sum(1) / max(t_len, 1)
        prior_den = cfg.pool_weeks * mean_mu * mean_mu
        # A cell may be more dispersed than its category, not less: a calm half-year in a cell
        # is more often luck than a calmer place, and an alpha below the pool alerts on noise.
        cat.alpha = np.maximum(shrunk_alpha(num, den, cat.alpha_pool, prior_den),
                               cat.alpha_pool)

    # -- alerts -------------------------------------------------------------------------------

    def _alert(self, kind: str, category: str, ward: str, start_s: int, end_s: int, count: int,
               expected: float, p: float, threshold: float, method: str, alpha: float,
               protocol: str | None, *, cluster: tuple[str, ...] = (), weeks: int = 1,
               evidence: float | None = None, late: bool = False) -> Alert:
        start = datetime.fromtimestamp(start_s, UTC)
        end = datetime.fromtimestamp(end_s, UTC)
        alert = Alert(
            ward_code=ward, district_code=self._districts.get(ward), category=category,
            window=kind,  # type: ignore[arg-type]
            window_start=start, window_end=end, count=int(count), expected=float(expected),
            p_value=float(p), bh_threshold=float(threshold), gi_z=None,
            neighbours=tuple(sorted(self._adjacency.get(ward, frozenset()) & set(cluster))),
            protocol=protocol, method=method, dispersion=float(alpha), cluster=cluster,
            evidence=evidence, late=late, why="")
        return alert.with_why(explain(alert))


__all__ = ["CountEngine", "EngineConfig", "Event"]
