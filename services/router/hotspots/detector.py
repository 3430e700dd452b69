"""Event-time hot-spot detection over hour, day and week windows (pure; no broker code).

Since issue 17 the router uses :mod:`.engine` (negative-binomial baselines, CUSUM, space-time
scan, per-feed watermarks); this EWMA/Poisson detector is kept as the benchmark's "before"
reference (bench/hotspot_sim.py --detector old), and its window arithmetic and :class:`Alert`
are shared with the engine. It is over 400 lines on purpose: a frozen reference is kept whole,
and goes as a whole (with :class:`Alert` moved out) when the before/after comparison is retired.

What it does
    Counts events per (ward, category) in tumbling UTC windows (hour; day; week starting Monday
    00:00 UTC). When event time moves past a window's end the window closes and every
    ward x category cell of that close is tested at once: one-sided Poisson exceedance p-value
    of the count against the cell's expected count (cells under ``min_count`` cannot alert),
    then Benjamini–Hochberg over the whole family at ``alpha``. Each surviving cell becomes an
    :class:`Alert`, with the Getis–Ord Gi* z-score of the ward and the neighbouring wards that
    are also elevated.

Why an EWMA baseline and not a seasonal one
    A seasonal model (week-of-year, or Farrington-style "same weeks in past years") needs years
    of history per ward and category; partnerships join the hub with weeks of it, so seasonal
    terms are not estimable and would be fitted to noise. An exponentially weighted mean needs
    no history length, starts usefully after a few windows and follows slow drift (new estates,
    changed recording practice, seasonal swell) without being told about it. The default
    half-life is six weeks of time for every window kind (6 week windows, 42 day windows,
    1008 hour windows): long enough that a ward's baseline averages ~9 weeks of data (relative
    noise well under the excess a hot spot produces), short enough to follow a seasonal trend.
    Hour-of-day and day-of-week cycles are deliberately not modelled; ``min_count`` and the BH
    family size keep ordinary evening or weekend peaks below the alert line.

    The EWMA is bias-corrected (see :class:`~.stats.EwmaState`) so early windows are weighed
    evenly, and idle cells are decayed lazily in O(1) when next touched. A window that alerts
    folds into the baseline at most the Poisson 99th percentile of its expected count, so a hot
    spot does not inflate its own baseline and hide its second week; a genuine level shift still
    raises the baseline every window, so its alerts die out as the baseline catches up.

Expected count for a cell
    * A cell with ``warmup_windows`` of history uses its own EWMA.
    * Wards in the study area (the adjacency keys, or ``wards=``) share the category's history:
      once a category has been seen, every study ward has observed that category, and windows
      without events count as zeros. A quiet ward therefore has a low, honest baseline.
    * A ward outside the study area starts its history when first seen. Until it is warm its
      expected count is the category's prior: the EWMA of the category's total per window divided
      by the number of wards watched (the global mean per ward for that category). That choice is
      conservative for the usual late arrival, a quiet ward whose first event comes weeks in.
    * While the category itself has fewer than ``warmup_windows`` windows, nothing is tested.
    * Every expected count is floored at ``min_expected`` so a ward with an all-zero history is
      compared with a small positive rate rather than an impossible zero.

The BH family of one close is every ward x category cell that could be tested (all watched
wards of every warm category); cells without events have p = 1 and are counted, not built.
``min_count`` is part of the test: a cell below it gets p = 1 and stays in the family. That
p-value is still valid (never smaller than the Poisson one) and depends on its own cell only,
so BH keeps its FDR guarantee. Dropping such cells from the family would let the data shrink
m; rejecting them in BH and filtering afterwards would let discarded rejections loosen the
threshold for the rest. It also spares scoring the many 1-event cells of hourly windows.

Known limitation
    The Poisson test treats the EWMA as the true rate, ignoring its estimation error; quiet
    cells whose baseline happens to sit low are slightly over-alerted. Simulated on the 186
    Hertfordshire wards x 3 categories with no hot spots, that gives ~0.02 false alerts per 100
    ward-weeks (about 0.05 per weekly close, against 0.01 for exactly known rates). A
    negative-binomial predictive test would close the gap if partners find it noisy.

Bounded state
    Only the open window per kind (one counter per (ward, category) seen in it), one baseline per
    (ward, category, kind) and one prior per (category, kind) are held, so ``state_size()`` is at
    most kinds x categories x (2 x wards + 1) + categories, whatever the number of records.

Time
    Event time drives everything: the watermark is the latest ``occurred_at`` seen (or the
    ``now`` given to :meth:`HotspotDetector.advance`). An event for a window that has already
    closed cannot be counted without reopening a tested window, so it is dropped and counted in
    ``late_events``; callers should feed records in event-time order per partition.

Timestamps are UTC; a naive datetime is taken as UTC (the hub convention). If a protocol
coarsens ``occurred_at`` (say to the day), configure only the window kinds at least that
coarse: hourly windows over day-bucketed times would put a whole day in the midnight hour.

Everything is deterministic: no randomness, no wall clock, sorted output.

Over 400 lines because it is kept whole as the hot-spot benchmark's 'before' reference; its window
arithmetic and Alert are shared with the engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from scipy.stats import poisson

from services.core.config.errors import ConfigError

from .getis_ord import gi_star
from .stats import EwmaState, benjamini_hochberg, ewma_smoothing, poisson_exceedance_p

WindowKind = Literal["hour", "day", "week"]
WINDOW_KINDS: tuple[WindowKind, ...] = ("hour", "day", "week")
_KIND_ORDER = {kind: i for i, kind in enumerate(WINDOW_KINDS)}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WINDOW_SECONDS = {"hour": 3600, "day": 86400, "week": 7 * 86400}
# 1970-01-01 was a Thursday; shifting by 3 days makes week index 0 start on Monday 1969-12-29.
_WEEK_SHIFT_SECONDS = 3 * 86400
_ONE_SECOND = timedelta(seconds=1)

# Percentile an alerting window is capped at before it updates the baseline (see docstring).
_ALERT_UPDATE_QUANTILE = 0.99


def _per_kind(hour: float, day: float, week: float) -> Mapping[str, float]:
    return MappingProxyType({"hour": hour, "day": day, "week": week})


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Detector tuning; defaults are chosen for ward-level weekly counts in a CSP.

    alpha=0.01: BH false discovery rate per window close; partnerships act on alerts with
        officer time, so at most ~1 in 100 alerts should be noise.
    min_count=5: fewer than five events is not a hot spot a partnership can act on, however
        small the baseline, and it keeps hourly and overnight blips quiet.
    ewma_halflife_windows: six weeks of time per window kind (module docstring explains).
    warmup_windows: six weeks of time per window kind (one half-life) before a category is
        tested. Simulated on the Hertfordshire wards, testing after four weeks gave ~0.5 false
        alerts in the first tested week; after six, no more than at steady state.
    suppress_below=10: small-number suppression for onward publication of ward counts; the
        detector keeps true counts, publishers call ``alert.public_count(suppress_below)``.
    min_expected=0.1: floor for expected counts, so an all-zero history cannot give p = 0.
        It is per window, so for hour windows it sits above most cells' true rate: hourly
        alerts are deliberately conservative, yet five events in one ward-hour still alert.
    neighbour_alpha=0.05: an uncorrected, descriptive cut for "neighbour also elevated"; it
        annotates an alert and never creates one, so multiplicity does not apply.

    A single number for ``ewma_halflife_windows`` or ``warmup_windows`` applies to every kind.
    """

    alpha: float = 0.01
    min_count: int = 5
    ewma_halflife_windows: float | Mapping[str, float] = field(
        default_factory=lambda: _per_kind(hour=1008.0, day=42.0, week=6.0))
    warmup_windows: int | Mapping[str, float] = field(
        default_factory=lambda: _per_kind(hour=1008, day=42, week=6))
    suppress_below: int = 10
    min_expected: float = 0.1
    neighbour_alpha: float = 0.05
    window_kinds: tuple[WindowKind, ...] = WINDOW_KINDS

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"must be in (0, 1), got {self.alpha}", field="alpha")
        if not 0.0 < self.neighbour_alpha <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.neighbour_alpha}",
                              field="neighbour_alpha")
        if self.min_count < 1:
            raise ConfigError(f"must be >= 1, got {self.min_count}", field="min_count")
        if self.suppress_below < 0:
            raise ConfigError(f"must be >= 0, got {self.suppress_below}", field="suppress_below")
        if not self.min_expected > 0:
            raise ConfigError(f"must be > 0, got {self.min_expected}", field="min_expected")
        if not self.window_kinds or any(k not in _KIND_ORDER for k in self.window_kinds):
            raise ConfigError(f"must be a non-empty subset of {WINDOW_KINDS}",
                              field="window_kinds")
        for kind in self.window_kinds:
            if not self.halflife(kind) > 0:
                raise ConfigError(f"must be > 0 for {kind}", field="ewma_halflife_windows")
            if self.warmup(kind) < 1:
                raise ConfigError(f"must be >= 1 for {kind}", field="warmup_windows")

    def halflife(self, kind: str) -> float:
        return float(_lookup(self.ewma_halflife_windows, kind, "ewma_halflife_windows"))

    def warmup(self, kind: str) -> int:
        return int(_lookup(self.warmup_windows, kind, "warmup_windows"))


def _lookup(value: float | Mapping[str, float], kind: str, name: str) -> float:
    if isinstance(value, Mapping):
        if kind not in value:
            raise ConfigError(f"no value for window kind {kind!r}", field=name)
        return value[kind]
    return value


@dataclass(frozen=True, slots=True)
class Alert:
    ward_code: str
    district_code: str | None
    category: str
    window: WindowKind
    window_start: datetime
    window_end: datetime
    count: int
    expected: float
    p_value: float
    # BH critical value of this window close; p_value <= bh_threshold by construction.
    bh_threshold: float
    # None when the detector has no adjacency, so no spatial statistic could be computed.
    gi_z: float | None
    neighbours: tuple[str, ...]
    # "id@version" of the sharing protocol the counts derive from, so onward use can be audited.
    protocol: str | None
    # Issue 17 (engine.py); the defaults describe the EWMA/Poisson detector of this module.
    # "poisson" (this module), "nb-window", "nb-cusum", "nb-window+cusum" or "scan".
    method: str = "poisson"
    # Negative-binomial alpha (variance = mu + alpha mu^2) the test used; 0 is Poisson.
    dispersion: float | None = None
    # Other wards of a space-time cluster (the alert's ward is the cluster's centre).
    cluster: tuple[str, ...] = ()
    # CUSUM sum or scan score behind the alert, when the method has one.
    evidence: float | None = None
    # Raised when a window was re-tested after late records arrived.
    late: bool = False
    # Why it was raised, in words an analyst can repeat (explain.py).
    why: str = ""

    @property
    def method_kind(self) -> str:
        """The window kind for window tests, else "cusum" or "scan" (benchmark breakdown)."""
        if self.method == "scan":
            return "scan"
        if self.method == "nb-cusum":
            return "cusum"
        return self.window

    def with_why(self, why: str) -> Alert:
        return replace(self, why=why)

    def public_count(self, suppress_below: int) -> str:
        """Count for onward publication with small-number suppression ("<N" below N)."""
        return f"<{suppress_below}" if self.count < suppress_below else str(self.count)

    def to_dict(self, suppress_below: int | None = None) -> dict[str, Any]:
        """JSON-friendly form; pass ``suppress_below`` when the dict leaves the hub."""
        return {
            "ward_code": self.ward_code,
            "district_code": self.district_code,
            "category": self.category,
            "window": self.window,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "count": self.count if suppress_below is None else self.public_count(suppress_below),
            "expected": self.expected,
            "p_value": self.p_value,
            "bh_threshold": self.bh_threshold,
            "gi_z": self.gi_z,
            "neighbours": list(self.neighbours),
            "protocol": self.protocol,
            "method": self.method,
            "dispersion": self.dispersion,
            "cluster": list(self.cluster),
            "evidence": self.evidence,
            "late": self.late,
            "why": self.why,
        }


def _epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        # Hub convention (as in the depersonalise time transform): naive means UTC.
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic on the timedelta: float timestamps could round across a boundary.
    return (moment - _EPOCH) // _ONE_SECOND


def _index_from_seconds(kind: WindowKind, seconds: int) -> int:
    if kind == "week":
        seconds += _WEEK_SHIFT_SECONDS
    return seconds // _WINDOW_SECONDS[kind]


def window_index(kind: WindowKind, moment: datetime) -> int:
    """Index of the UTC window of ``kind`` holding ``moment`` (consecutive windows differ by 1)."""
    return _index_from_seconds(kind, _epoch_seconds(moment))


def _start_seconds(kind: WindowKind, index: int) -> int:
    return index * _WINDOW_SECONDS[kind] - (_WEEK_SHIFT_SECONDS if kind == "week" else 0)


def window_bounds(kind: WindowKind, index: int) -> tuple[datetime, datetime]:
    """[start, end) of window ``index`` of ``kind`` as UTC datetimes."""
    start = _EPOCH + timedelta(seconds=_start_seconds(kind, index))
    return start, start + timedelta(seconds=_WINDOW_SECONDS[kind])


@dataclass(slots=True)
class _Cell:
    count: int = 0
    protocol: str | None = None


@dataclass(slots=True)
class _OpenWindow:
    index: int
    cells: dict[tuple[str, str], _Cell] = field(default_factory=dict)


@dataclass(slots=True)
class _Baseline:
    ewma: EwmaState
    # Windows [start, current_to) are folded in; later ones are pending zeros or the open window.
    current_to: int


@dataclass(slots=True)
class _Category:
    # First window index in which the category was seen; study wards' histories start here.
    start: int
    total: _Baseline
    # Wards outside the study area that have reported this category; they widen the family.
    outside_wards: int = 0
    # Wards whose history the category total covers (set at each close, before new arrivals
    # join), so the per-ward prior is not diluted by wards that have not yet contributed.
    prior_wards: int = 0


class HotspotDetector:
    """Bounded-state, event-time hot-spot detector. Feed it with :meth:`observe`."""

    def __init__(self, config: DetectorConfig | None = None, *,
                 adjacency: Mapping[str, frozenset[str]] | None = None,
                 districts: Mapping[str, str] | None = None,
                 wards: Iterable[str] | None = None) -> None:
        self.config = config or DetectorConfig()
        self._adjacency: Mapping[str, frozenset[str]] = dict(adjacency or {})
        self._districts: Mapping[str, str] = dict(districts or {})
        self._study: frozenset[str] = frozenset(wards if wards is not None else self._adjacency)
        self._smoothing = {k: ewma_smoothing(self.config.halflife(k))
                           for k in self.config.window_kinds}
        self._warmup = {k: self.config.warmup(k) for k in self.config.window_kinds}
        self._open: dict[WindowKind, _OpenWindow] = {}
        # Lowest window index per kind that may still take events (everything below has closed).
        self._floor: dict[WindowKind, int] = {}
        # Epoch second at which the earliest window kind next rolls over.
        self._next_boundary = -math.inf
        self._baselines: dict[tuple[str, str, WindowKind], _Baseline] = {}
        self._categories: dict[tuple[str, WindowKind], _Category] = {}
        self._protocols: dict[str, str] = {}
        self.late_events: dict[WindowKind, int] = dict.fromkeys(self.config.window_kinds, 0)

    # -- public API ---------------------------------------------------------------------------

    def set_protocol(self, category: str, protocol: str) -> None:
        """Default "id@version" stamped on this category's alerts when observe() names none."""
        self._protocols[category] = protocol

    def observe(self, ward_code: str, category: str, occurred_at: datetime, count: int = 1,
                protocol: str | None = None) -> list[Alert]:
        """Count ``count`` events; returns alerts of any windows this event's time closed."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        seconds = _epoch_seconds(occurred_at)
        # Most events land inside every open window; only a boundary crossing needs _advance.
        alerts = self._advance(seconds) if seconds >= self._next_boundary else []
        key = (ward_code, category)
        for kind in self.config.window_kinds:
            index = _index_from_seconds(kind, seconds)
            if index < self._floor[kind]:
                self.late_events[kind] += 1
                continue
            window = self._open.get(kind)
            if window is None:
                window = self._open[kind] = _OpenWindow(index)
            cell = window.cells.get(key)
            if cell is None:
                cell = window.cells[key] = _Cell()
            cell.count += count
            if protocol is not None:
                cell.protocol = protocol
        return alerts

    def advance(self, now: datetime) -> list[Alert]:
        """Move event time to ``now``, closing and evaluating every window that ended by then."""
        return self._advance(_epoch_seconds(now))

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume exactly where this detector stands, JSON-ready.

        Restoring it into a detector built with the same config, adjacency and wards and feeding
        the events after the snapshot gives the same alerts as never having stopped.
        """
        return {
            "open": {kind: {"index": w.index,
                            "cells": [[ward, cat, c.count, c.protocol]
                                      for (ward, cat), c in w.cells.items()]}
                     for kind, w in self._open.items()},
            "floor": dict(self._floor),
            "baselines": [[ward, cat, kind, *b.ewma, b.current_to]
                          for (ward, cat, kind), b in self._baselines.items()],
            "categories": [[cat, kind, s.start, *s.total.ewma, s.total.current_to,
                            s.outside_wards, s.prior_wards]
                           for (cat, kind), s in self._categories.items()],
            "protocols": dict(self._protocols),
            "late_events": dict(self.late_events),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace this detector's state with one from :meth:`to_state`."""
        kinds = set(self.config.window_kinds)
        self._open = {}
        for kind, w in state["open"].items():
            if kind in kinds:
                window = self._open[kind] = _OpenWindow(int(w["index"]))
                for ward, cat, count, protocol in w["cells"]:
                    window.cells[(ward, cat)] = _Cell(int(count), protocol)
        self._floor = {k: int(v) for k, v in state["floor"].items() if k in kinds}
        self._baselines = {
            (ward, cat, kind): _Baseline(EwmaState(float(t), float(wt), int(n)), int(to))
            for ward, cat, kind, t, wt, n, to in state["baselines"] if kind in kinds}
        self._categories = {
            (cat, kind): _Category(int(start), _Baseline(EwmaState(float(t), float(wt), int(n)),
                                                         int(to)), int(outside), int(prior))
            for cat, kind, start, t, wt, n, to, outside, prior in state["categories"]
            if kind in kinds}
        self._protocols = dict(state["protocols"])
        self.late_events = {k: int(state["late_events"].get(k, 0)) for k in kinds}
        self._next_boundary = (min(_start_seconds(k, self._floor[k] + 1) for k in kinds)
                               if set(self._floor) == kinds else -math.inf)

    def district_of(self, ward: str) -> str | None:
        return self._districts.get(ward)

    def open_counts(self) -> dict[tuple[WindowKind, int, str, str], int]:
        """(kind, window index, ward, category) -> count for the windows still open."""
        return {(kind, w.index, ward, cat): c.count
                for kind, w in self._open.items() for (ward, cat), c in w.cells.items()}

    def expected_now(self, ward: str, category: str, kind: WindowKind) -> float | None:
        """Expected count for the open window of ``kind``, or None while nothing is known."""
        window = self._open.get(kind)
        if window is None or (category, kind) not in self._categories:
            return None
        return self._expected(ward, category, kind, window.index)

    def state_size(self) -> int:
        """Number of keys held; bounded by kinds x categories x (2 x wards + 1) + categories."""
        return (sum(len(w.cells) for w in self._open.values()) + len(self._baselines)
                + len(self._categories) + len(self._protocols))

    # -- time ---------------------------------------------------------------------------------

    def _advance(self, seconds: int) -> list[Alert]:
        alerts: list[Alert] = []
        for kind in self.config.window_kinds:
            index = _index_from_seconds(kind, seconds)
            if kind in self._floor and index <= self._floor[kind]:
                continue
            self._floor[kind] = index
            window = self._open.get(kind)
            if window is not None and window.index < index:
                del self._open[kind]
                alerts.extend(self._close(kind, window))
        self._next_boundary = min(_start_seconds(kind, self._floor[kind] + 1)
                                  for kind in self.config.window_kinds)
        if len(alerts) > 1:
            alerts.sort(key=lambda a: (a.window_end, _KIND_ORDER[a.window], a.category,
                                       a.ward_code))
        return alerts

    # -- window close -------------------------------------------------------------------------

    def _close(self, kind: WindowKind, window: _OpenWindow) -> list[Alert]:
        k = window.index
        by_category: dict[str, dict[str, _Cell]] = {}
        for (ward, category), cell in window.cells.items():
            by_category.setdefault(category, {})[ward] = cell
        for category, cells in by_category.items():
            self._register(category, kind, k, cells)

        # Expected counts come from windows before k only, so score before updating baselines.
        keys: list[tuple[str, str]] = []
        expected: list[float] = []
        p_values: list[float] = []
        family = 0
        for (category, ck), state in sorted(self._categories.items()):
            if ck != kind or k - state.start < self._warmup[kind]:
                continue
            family += len(self._study) + state.outside_wards
            for ward, cell in by_category.get(category, {}).items():
                if cell.count < self.config.min_count:
                    continue  # p is taken as 1 (module docstring: min_count)
                e = self._expected(ward, category, kind, k)
                keys.append((ward, category))
                expected.append(e)
                p_values.append(poisson_exceedance_p(cell.count, e))

        result = benjamini_hochberg(p_values, self.config.alpha, family_size=family)
        hits = [i for i, rejected in enumerate(result.rejected) if rejected]
        alerts = self._build_alerts(kind, window, hits, keys, expected, p_values,
                                    result.threshold, by_category)

        alerted = {keys[i]: expected[i] for i in hits}
        # Every cell with events folds into its baseline, including those of categories still
        # warming up (they were not scored, but their history starts now).
        for key, cell in window.cells.items():
            self._fold(key, kind, k, cell.count, alerted.get(key))
        for category, cells in by_category.items():
            state = self._categories[(category, kind)]
            self._fold_baseline(state.total, kind, k, sum(c.count for c in cells.values()))
            state.prior_wards = len(self._study) + state.outside_wards
        return alerts

    def _register(self, category: str, kind: WindowKind, k: int,
                  cells: Mapping[str, _Cell]) -> None:
        state = self._categories.get((category, kind))
        if state is None:
            state = self._categories[(category, kind)] = _Category(
                start=k, total=_Baseline(EwmaState(), current_to=k))
        for ward in cells:
            if ward not in self._study and (ward, category, kind) not in self._baselines:
                # First sight of an outside ward: its history starts now (see module docstring).
                self._baselines[(ward, category, kind)] = _Baseline(EwmaState(), current_to=k)
                state.outside_wards += 1

    def _history(self, ward: str, category: str, kind: WindowKind, k: int) -> EwmaState:
        """The cell's EWMA over windows before ``k``, without mutating state."""
        baseline = self._baselines.get((ward, category, kind))
        if baseline is None:
            # A study ward that never reported this category: zeros since the category began.
            start = self._categories[(category, kind)].start
            return EwmaState().skip_zero_windows(k - start, self._smoothing[kind])
        return baseline.ewma.skip_zero_windows(k - baseline.current_to, self._smoothing[kind])

    def _expected(self, ward: str, category: str, kind: WindowKind, k: int) -> float:
        history = self._history(ward, category, kind, k)
        mean = history.mean if history.windows >= self._warmup[kind] else None
        if mean is None:
            state = self._categories[(category, kind)]
            total = state.total.ewma.skip_zero_windows(k - state.total.current_to,
                                                       self._smoothing[kind]).mean or 0.0
            mean = total / max(1, state.prior_wards)
        return max(mean, self.config.min_expected)

    def _fold(self, key: tuple[str, str], kind: WindowKind, k: int, count: int,
              alerted_expected: float | None) -> None:
        ward, category = key
        baseline = self._baselines.get((ward, category, kind))
        if baseline is None:
            start = self._categories[(category, kind)].start
            baseline = self._baselines[(ward, category, kind)] = _Baseline(EwmaState(), start)
        observation = float(count)
        if alerted_expected is not None:
            cap = float(poisson.ppf(_ALERT_UPDATE_QUANTILE, alerted_expected))
            observation = min(observation, cap)
        self._fold_baseline(baseline, kind, k, observation)

    def _fold_baseline(self, baseline: _Baseline, kind: WindowKind, k: int,
                       observation: float) -> None:
        baseline.ewma = baseline.ewma.fold(k - baseline.current_to, observation,
                                           self._smoothing[kind])
        baseline.current_to = k + 1

    # -- alert assembly -----------------------------------------------------------------------

    def _build_alerts(self, kind: WindowKind, window: _OpenWindow, hits: list[int],
                      keys: list[tuple[str, str]], expected: list[float], p_values: list[float],
                      threshold: float, by_category: Mapping[str, Mapping[str, _Cell]],
                      ) -> list[Alert]:
        if not hits:
            return []
        start, end = window_bounds(kind, window.index)
        spatial: dict[str, tuple[dict[str, float], set[str]]] = {}
        alerts: list[Alert] = []
        for i in hits:
            ward, category = keys[i]
            if category not in spatial:
                spatial[category] = self._spatial(category, kind, window.index,
                                                  by_category.get(category, {}))
            gi, elevated = spatial[category]
            cell = window.cells[(ward, category)]
            alerts.append(Alert(
                ward_code=ward,
                district_code=self._districts.get(ward),
                category=category,
                window=kind,
                window_start=start,
                window_end=end,
                count=cell.count,
                expected=expected[i],
                p_value=p_values[i],
                bh_threshold=threshold,
                gi_z=gi.get(ward) if self._adjacency else None,
                neighbours=tuple(sorted(self._adjacency.get(ward, frozenset()) & elevated)),
                protocol=cell.protocol or self._protocols.get(category),
            ))
        return alerts

    def _spatial(self, category: str, kind: WindowKind, k: int,
                 cells: Mapping[str, _Cell]) -> tuple[dict[str, float], set[str]]:
        """Gi* of each ward's Pearson residual, and the wards elevated on their own.

        Residuals (count - expected) / sqrt(expected) rather than raw counts: raw counts make
        every busy town centre a permanent "cluster", while residuals cluster only where the
        excess itself is spatially grouped, which is what a partnership needs to see.
        """
        if not self._adjacency:
            return {}, set()
        # Study wards plus any outside ward that reported in this window; quiet outside wards
        # have no neighbours in the adjacency, so leaving them out only trims the mean slightly.
        residuals: dict[str, float] = {}
        elevated: set[str] = set()
        for ward in self._study | set(cells):
            e = self._expected(ward, category, kind, k)
            count = cells[ward].count if ward in cells else 0
            residuals[ward] = (count - e) / math.sqrt(e)
            if count > e and poisson_exceedance_p(count, e) <= self.config.neighbour_alpha:
                elevated.add(ward)
        return gi_star(residuals, self._adjacency, areas=residuals), elevated


__all__ = ["WINDOW_KINDS", "Alert", "DetectorConfig", "HotspotDetector", "WindowKind",
           "window_bounds", "window_index"]
