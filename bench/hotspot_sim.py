"""Seeded simulation benchmark for the hot-spot detector (issue 17). Minutes, not hours.

    python -m bench.hotspot_sim --detector old   # the detector as it was (EWMA + Poisson)
    python -m bench.hotspot_sim --detector new   # NB baseline + CUSUM + scan + watermarks
    python -m bench.hotspot_sim --detector new --worlds null-moderate --weeks 20   # quick look
    python -m bench.hotspot_sim --seeds 17 18 19 --worlds clusters-strong --set alpha=0.005
    python -m bench.hotspot_sim --oracle-calibration   # the known-rate oracles on null worlds

Seeds: every world is run for each of ``--seeds`` (default 17 18 19); a world's random stream
depends on the seed and its fixed place in the table, so a world run alone is the same world
as in a full run. Figures are pooled over seeds (sums, not means of ratios) and the worst seed
is kept beside them; ``per_seed`` in the output holds every seed's row, with the false alerts
and missed clusters spelled out. ``--set`` overrides an EngineConfig number (experiments);
``--merge`` joins result files of separate runs (e.g. different worlds) into one.

Worlds (186 real Hertfordshire wards x 3 categories):
    null-poisson / null-moderate / null-strong
        no planted excess; counts negative binomial with size k = inf / 10 / 2.5, i.e. a weekly
        dispersion index of 1 / (1.5 at 5 a week, 4 at 30) / (3 at 5, 13 at 30). Half of the
        extra variance is shared by the whole week of a cell, half is per day, so day windows
        are overdispersed too. Weekday, hour-of-day and a linear trend shape every category.
    clusters-moderate / clusters-strong
        the same plus planted clusters: single wards and groups of adjacent wards, x1.5-x5,
        lasting 1-4 weeks, in the evaluated weeks.
    shift-moderate
        level shifts: 12 cells x2 from one week on, and one category x1.5 county-wide (a
        recording change) from a later week on.
    late-moderate
        null counts with real-world feeds: police clock one hour ahead, fire uploaded in a daily
        batch at 06:00, health 48 hours late, a three-day police outage backfilled with true
        times, and one police record stamped 23 hours ahead.

Measures (evaluated weeks only: the first ``burn_in`` weeks train the baselines):
    false alerts per 100 ward-weeks (per window kind and in total), precision, recall on clusters
    a known-rate test would catch (and, for comparison, on those the old NB-approximation oracle
    called catchable), detection delay per window kind, the number of weeks a level shift keeps
    alerting, records dropped (not counted in any window), and the oracle's own seconds.

An *alert* is one unit an analyst reads: a cell alert of any window, an accumulated-evidence
alert, or one multi-ward cluster. It is true when it shares a category and a ward with a
planted cluster (or shift) and its window overlaps the plant (plus one week for the tail).

The known-rate oracle: a planted cluster is *catchable* when, knowing the true null means and
dispersion and the cluster's wards, the summed count of the cluster over its first j weeks
(any j) has an upper tail p <= 0.01 / (cells per week). Recall is measured on those only: the
target is to catch what a test with perfect knowledge of the rates would. The tail is the exact
null of the simulation (Poisson given a weekly times a daily gamma level), by Monte Carlo over
the levels (``exact_upper``): a negative binomial with the same variance has a much lighter
far tail, so it is not a valid test at this level (it calls null sums of k = 2.5 far rarer
than they are; ``--oracle-calibration``) and marked clusters catchable that a test knowing the
null would not catch. The NB p is kept beside it (``oracle_p_nb``, "NB oracle" recall).

Over 400 lines because the worlds, both detectors' drivers and the scoring of one reproducible
benchmark sit together, with the oracle's exact tail and its calibration check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.special import betainc, pdtrc

from services.router.hotspots.adjacency import build_adjacency, load_ward_features

HERTS_LAD_CODES = frozenset({
    "E07000095", "E07000096", "E07000098", "E07000099", "E07000102",
    "E07000103", "E07000240", "E07000241", "E07000242", "E07000243",
})
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
START_S = int(START.timestamp())
DAY = 86400
WEEK = 7 * DAY
RESULTS = Path(__file__).resolve().parent / "results"

# Three categories on three feeds, with their own shapes. Rates are per ward per week.
CATEGORIES = ("police|asb", "fire|deliberate_fire", "health|assault")
FEEDS = ("police", "fire", "health")
RATE_SCALE = (7.0, 2.5, 4.0)  # median weekly rate per ward
TREND = (0.004, -0.003, 0.0)  # per week, log scale
DOW = (  # Monday..Sunday, relative
    (0.85, 0.85, 0.85, 0.9, 1.2, 1.4, 0.95),
    (0.9, 0.9, 0.95, 0.95, 1.05, 1.15, 1.1),
    (0.7, 0.7, 0.75, 0.8, 1.1, 1.7, 1.25),
)


def _hod(peak: float, width: float, floor: float) -> np.ndarray:
    h = np.arange(24)
    d = np.minimum(np.abs(h - peak), 24 - np.abs(h - peak))
    shape = floor + np.exp(-0.5 * (d / width) ** 2)
    return shape / shape.sum()


HOD = (_hod(17, 4, 0.3), _hod(21, 3, 0.15), _hod(23, 2.5, 0.1))


@dataclass
class Plant:
    category: int
    wards: frozenset[int]
    start_week: int
    weeks: int | None  # None: a permanent level shift
    factor: float
    kind: str  # "single", "group", "shift", "county-shift"
    catchable: bool = False  # by the exact known-rate test (oracle_p <= level)
    # The known-rate test's best p over the plant's first j weeks: the exact null tail (1.0 when
    # no j had an NB p below EXACT_IF_NB_BELOW, so the exact tail was not computed), its Monte
    # Carlo standard error, and the negative-binomial approximation the oracle used before.
    oracle_p: float = 1.0
    oracle_p_se: float = 0.0
    oracle_p_nb: float = 1.0
    catchable_nb: bool = False  # by the NB approximation (oracle_p_nb <= level)

    def start_s(self) -> int:
        return START_S + self.start_week * WEEK

    def end_s(self) -> float:
        return math.inf if self.weeks is None else START_S + (self.start_week + self.weeks) * WEEK


@dataclass
class World:
    name: str
    k: float  # NB size at the week level (inf = Poisson)
    weeks: int
    burn_in: int
    plants: list[Plant] = field(default_factory=list)
    late_feeds: bool = False


@dataclass
class Records:
    ward: np.ndarray  # int index
    cat: np.ndarray
    event_s: np.ndarray  # stamped event time (epoch seconds)
    arrive_s: np.ndarray  # when the hub receives it
    counts: np.ndarray  # [cells, weeks] realised counts by true week
    null_mu: np.ndarray  # [cells, weeks] true null weekly means
    null_mu_day: np.ndarray  # [cells, days] true null daily means (before plants; the oracle)


@dataclass(frozen=True)
class BenchAlert:
    method: str  # window kind ("hour", "day", "week") or "cusum" / "scan"
    category: str
    wards: frozenset[str]
    start_s: int
    end_s: int
    raised_s: int
    count: int = 0
    expected: float = 0.0
    p: float = 1.0


class Adapter(Protocol):
    name: str

    def add(self, batch: Sequence[tuple[str, str, str, int]], now_s: int) -> list[BenchAlert]: ...

    def finish(self, now_s: int) -> list[BenchAlert]: ...

    def dropped(self) -> int: ...


def herts_wards() -> tuple[list[str], dict[str, frozenset[str]]]:
    features = [f for f in load_ward_features() if f.lad_code in HERTS_LAD_CODES]
    return [f.ward_code for f in features], build_adjacency(features)


# -- world generation ---------------------------------------------------------------------------

def plant_clusters(rng: np.random.Generator, world: World, adj_idx: list[list[int]],
                   n_single: int = 12, n_group: int = 12) -> list[Plant]:
    plants: list[Plant] = []
    used: set[tuple[int, int]] = set()
    factors = (1.5, 2.0, 3.0, 5.0)
    for i in range(n_single + n_group):
        for _ in range(100):
            cat = int(rng.integers(len(CATEGORIES)))
            centre = int(rng.integers(len(adj_idx)))
            if i < n_single or not adj_idx[centre]:
                wards = {centre}
            else:
                nb = list(adj_idx[centre])
                rng.shuffle(nb)
                wards = {centre, *nb[: int(rng.integers(1, 4))]}
            if any((cat, w) in used for w in wards):
                continue
            used.update((cat, w) for w in wards)
            # Also keep neighbours clean so clusters do not touch each other.
            used.update((cat, n) for w in wards for n in adj_idx[w])
            weeks = int(rng.integers(1, 5))
            start = int(rng.integers(world.burn_in + 1, world.weeks - weeks))
            plants.append(Plant(cat, frozenset(wards), start, weeks,
                                float(factors[i % len(factors)]),
                                "single" if len(wards) == 1 else "group"))
            break
    return plants


def plant_shifts(rng: np.random.Generator, world: World, n_wards: int) -> list[Plant]:
    plants = []
    chosen = rng.choice(n_wards, size=12, replace=False)
    shift_week = world.burn_in + 2
    for j, w in enumerate(chosen):
        plants.append(Plant(int(j % 2), frozenset({int(w)}), shift_week, None, 2.0, "shift"))
    county_week = world.burn_in + 6
    plants.append(Plant(2, frozenset(range(n_wards)), county_week, None, 1.5, "county-shift"))
    return plants


def simulate(world: World, wards: list[str], seed: int) -> Records:
    rng = np.random.default_rng(seed)
    n_w, n_c = len(wards), len(CATEGORIES)
    cells = n_w * n_c
    days = world.weeks * 7
    base = np.empty((n_c, n_w))
    for c in range(n_c):
        base[c] = np.clip(RATE_SCALE[c] * np.exp(rng.normal(0.0, 0.75, n_w)), 0.3, 60.0)
    # Factor per (category, ward, day) from plants.
    factor = np.ones((n_c, n_w, days))
    for p in world.plants:
        d0 = p.start_week * 7
        d1 = days if p.weeks is None else (p.start_week + p.weeks) * 7
        for w in p.wards:
            factor[p.category, w, d0:d1] *= p.factor
    day_idx = np.arange(days)
    week_of_day = day_idx // 7
    dow = day_idx % 7
    mu_day = np.empty((n_c, n_w, days))
    for c in range(n_c):
        shape = np.asarray(DOW[c])[dow] / sum(DOW[c])
        trend = np.exp(TREND[c] * week_of_day)
        mu_day[c] = base[c][:, None] * (shape * trend)[None, :]
    null_mu = mu_day.reshape(n_c, n_w, world.weeks, 7).sum(axis=3).reshape(cells, world.weeks)
    lam = mu_day * factor
    if math.isfinite(world.k):
        # Half of 1/k from a weekly factor, half from daily factors (see module docstring).
        k_week, k_day = 2 * world.k, 2 * world.k / 7
        g_week = rng.gamma(k_week, 1 / k_week, (n_c, n_w, world.weeks))
        g_day = rng.gamma(k_day, 1 / k_day, (n_c, n_w, days))
        lam = lam * np.repeat(g_week, 7, axis=2) * g_day
    day_counts = rng.poisson(lam)
    counts = day_counts.reshape(n_c, n_w, world.weeks, 7).sum(axis=3).reshape(cells, world.weeks)
    # Records: hour of day from the category's hour shape, minute uniform.
    c_idx, w_idx, d_idx = np.nonzero(day_counts)
    reps = day_counts[c_idx, w_idx, d_idx]
    c_rec = np.repeat(c_idx, reps)
    w_rec = np.repeat(w_idx, reps)
    d_rec = np.repeat(d_idx, reps)
    hours = np.empty(len(c_rec), dtype=np.int64)
    for c in range(n_c):
        sel = c_rec == c
        hours[sel] = rng.choice(24, size=int(sel.sum()), p=HOD[c])
    true_s = START_S + d_rec * DAY + hours * 3600 + rng.integers(0, 3600, len(c_rec))
    event_s = true_s.copy()
    arrive_s = true_s + rng.exponential(1800, len(c_rec)).astype(np.int64)
    if world.late_feeds:
        police, fire, health = (c_rec == 0), (c_rec == 1), (c_rec == 2)
        event_s[police] += 3600  # the police clock runs an hour ahead
        # Fire uploads yesterday's incidents at 06:00.
        arrive_s[fire] = START_S + (d_rec[fire] + 1) * DAY + 6 * 3600
        # Health arrives 40 to 48 hours after the event.
        arrive_s[health] = true_s[health] + rng.integers(40 * 3600, 48 * 3600, int(health.sum()))
        # A three-day police outage, backfilled with true times when it ends.
        out0 = START_S + (world.burn_in + 4) * WEEK + 2 * DAY
        out1 = out0 + 3 * DAY
        in_outage = police & (true_s >= out0) & (true_s < out1)
        arrive_s[in_outage] = out1 + rng.integers(0, 1800, int(in_outage.sum()))
        # One record stamped 23 hours ahead.
        stray = int(np.flatnonzero(police & (true_s > START_S + (world.burn_in + 2) * WEEK))[0])
        event_s[stray] += 23 * 3600
    return Records(w_rec, c_rec, event_s, arrive_s, counts, null_mu,
                   mu_day.reshape(cells, days))


EXACT_DRAWS = 400_000  # Monte Carlo draws of the conditional Poisson mean per exact tail
EXACT_CHUNK = 100_000  # draws held in memory at once
# Near the level 400k draws leave a ~25% relative error at k = 2.5 (p ~ 1e-5), so a p within
# EXACT_REFINE_BAND times the level is refined, in chunks, to <= 10% (or EXACT_MAX_DRAWS).
EXACT_MAX_DRAWS = 4_000_000
EXACT_REFINE_BAND = 4.0
EXACT_REL_SE = 0.1
# The exact tail is only computed where the NB p (over that j) is below this: far from the
# level (0.01 / 558 = 1.8e-5) the plant is clearly not catchable, and the exact tail costs about
# a second per plant. oracle_calibration() checks the claim on null sums (NB p in 1e-3..1e-2).
EXACT_IF_NB_BELOW = 1e-2


def oracle_level(n_wards: int) -> float:
    return 0.01 / (n_wards * len(CATEGORIES))


def mark_catchable(world: World, rec: Records, n_wards: int, seed: int,
                   draws: int = EXACT_DRAWS) -> None:
    """The known-rate oracle (module docstring). ``seed`` is the world's simulation seed; plant
    i's Monte Carlo stream is seeded by (seed, i), so the oracle is reproducible."""
    level = oracle_level(n_wards)
    alpha = 0.0 if not math.isfinite(world.k) else 1.0 / world.k
    for i, p in enumerate(world.plants):
        if p.kind not in ("single", "group") or p.weeks is None:
            continue
        rows = [p.category * n_wards + w for w in p.wards]
        ys: list[int] = []
        nb_p: list[float] = []
        y = mu = mu2 = 0.0
        for j in range(p.weeks):
            wk = p.start_week + j
            y += float(rec.counts[rows, wk].sum())
            m = rec.null_mu[rows, wk]
            mu += float(m.sum())
            mu2 += float((m ** 2).sum())
            ys.append(int(y))
            nb_p.append(nb_upper(int(y), mu, alpha * mu2 / mu ** 2 if mu > 0 else 0.0))
        p.oracle_p_nb = min(nb_p)
        p.catchable_nb = p.oracle_p_nb <= level
        need = [j for j in range(p.weeks) if nb_p[j] < EXACT_IF_NB_BELOW]
        p.oracle_p, p.oracle_p_se = 1.0, 0.0
        if need:
            n_wk = max(need) + 1
            block = rec.null_mu_day[sorted(rows), p.start_week * 7:(p.start_week + n_wk) * 7]
            rng = np.random.default_rng([seed, 1, i])
            ex, se = exact_upper_by_week(ys[:n_wk], block, world.k, rng, draws,
                                         refine_near=level)
            best = min(need, key=lambda j: ex[j])
            p.oracle_p, p.oracle_p_se = float(ex[best]), float(se[best])
        p.catchable = p.oracle_p <= level


def exact_upper_by_week(ys: Sequence[int], mu_day_block: np.ndarray, k: float,
                        rng: np.random.Generator, draws: int = EXACT_DRAWS,
                        refine_near: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """P(Y_j >= ys[j]) and its Monte Carlo standard error, for j = 0..weeks-1, where Y_j is the
    null count of the block's first j + 1 weeks as :func:`simulate` draws it.

    ``mu_day_block`` is [wards, days] of null daily means, starting on a week boundary (the
    weekly gamma level is shared by the 7 days of a calendar week). Per (ward, day) the count
    is Poisson(mu * g_week * g_day), g_week ~ Gamma(2k, 1/2k) per (ward, week), g_day ~
    Gamma(2k/7, 7/2k) per (ward, day). Given the gammas the block's sum is Poisson(Lambda), so
    the tail is E[pdtrc(y - 1, Lambda)] over draws of Lambda: smooth in Lambda, far less
    variance than counting simulated sums >= y. k = inf: the plain Poisson tail (se 0).
    With ``refine_near`` (a level), draws go on past ``draws`` while some p is within
    EXACT_REFINE_BAND times it with a relative error over EXACT_REL_SE (up to EXACT_MAX_DRAWS).
    """
    mu = np.atleast_2d(np.asarray(mu_day_block, dtype=np.float64))
    n_w, n_d = mu.shape
    n_wk = n_d // 7
    if n_d != 7 * n_wk or len(ys) != n_wk:
        raise ValueError("the block must be whole weeks, one y per week")
    y = np.asarray(ys, dtype=np.float64)
    live = y > 0
    if not math.isfinite(k):
        lam = np.cumsum(mu.sum(axis=0).reshape(n_wk, 7).sum(axis=1))
        return np.where(live, pdtrc(np.maximum(y - 1, 0), lam), 1.0), np.zeros(n_wk)
    k_week, k_day = 2 * k, 2 * k / 7
    total = np.zeros(n_wk)
    total2 = np.zeros(n_wk)
    done = 0
    while True:
        n = min(EXACT_CHUNK, draws - done) if done < draws else EXACT_CHUNK
        lam = np.zeros((n, n_wk))
        for w in range(n_w):
            day = (rng.gamma(k_day, 1 / k_day, (n, n_d)) * mu[w]).reshape(n, n_wk, 7).sum(axis=2)
            lam += rng.gamma(k_week, 1 / k_week, (n, n_wk)) * day
        f = pdtrc(np.maximum(y - 1, 0), np.cumsum(lam, axis=1))
        total += f.sum(axis=0)
        total2 += (f ** 2).sum(axis=0)
        done += n
        mean = total / done
        se = np.sqrt(np.maximum(total2 / done - mean ** 2, 0.0) / max(done - 1, 1))
        if done < draws:
            continue
        if refine_near is None or done >= EXACT_MAX_DRAWS:
            break
        near = live & (mean <= EXACT_REFINE_BAND * refine_near) & (
            mean >= refine_near / EXACT_REFINE_BAND)
        if not (near & (se > EXACT_REL_SE * mean)).any():
            break
    return np.where(live, mean, 1.0), np.where(live, se, 0.0)


def exact_upper(y: int, mu_day_block: np.ndarray, k: float, rng: np.random.Generator,
                draws: int = EXACT_DRAWS, refine_near: float | None = None
                ) -> tuple[float, float]:
    """P(Y >= y) for Y the null count of the whole block (:func:`exact_upper_by_week`), and
    its Monte Carlo standard error."""
    n_wk = np.atleast_2d(mu_day_block).shape[1] // 7
    p, se = exact_upper_by_week([0] * (n_wk - 1) + [y], mu_day_block, k, rng, draws,
                                refine_near)
    return float(p[-1]), float(se[-1])


def nb_upper(y: int, mu: float, alpha: float) -> float:
    """P(Y >= y), Y with mean mu and variance mu + alpha mu^2 (Poisson when alpha = 0)."""
    if y <= 0:
        return 1.0
    if alpha <= 1e-12:
        return float(pdtrc(y - 1, mu))
    size = 1.0 / alpha
    return float(betainc(y, size, mu / (size + mu)))


# -- detectors ----------------------------------------------------------------------------------

class OldAdapter:
    """The detector before issue 17: one HotspotDetector over hour, day and week, fed records in
    arrival order (as the stage was), future records beyond a day refused as the stage did."""

    name = "old"

    def __init__(self, wards: list[str], adjacency: dict[str, frozenset[str]]) -> None:
        from services.router.hotspots.detector import HotspotDetector

        self.det = HotspotDetector(adjacency=adjacency, wards=wards)
        self.refused = 0
        self.counted = 0

    def _conv(self, alerts: Iterable[Any], now_s: int) -> list[BenchAlert]:
        return [BenchAlert(a.window, a.category, frozenset({a.ward_code}),
                           int(a.window_start.timestamp()), int(a.window_end.timestamp()), now_s)
                for a in alerts]

    def add(self, batch: Sequence[tuple[str, str, str, int]], now_s: int) -> list[BenchAlert]:
        out = []
        for ward, cat, _feed, ev in batch:
            if ev > now_s + DAY:
                self.refused += 1
                continue
            self.counted += 1
            out += self.det.observe(ward, cat, datetime.fromtimestamp(ev, UTC))
        return self._conv(out, now_s)

    def finish(self, now_s: int) -> list[BenchAlert]:
        return self._conv(self.det.advance(datetime.fromtimestamp(now_s, UTC)), now_s)

    def dropped(self) -> int:
        # A record late for its hour, day and week windows counts three times in late_events;
        # report records that missed at least their day window (the hour is a subset).
        return self.refused + self.det.late_events.get("day", 0)

    def dropped_by_kind(self) -> dict[str, int]:
        return {k: v + self.refused for k, v in self.det.late_events.items()}


class NewAdapter:
    """The issue-17 detector through the same narrow interface the stage uses."""

    name = "new"

    def __init__(self, wards: list[str], adjacency: dict[str, frozenset[str]],
                 overrides: dict[str, Any] | None = None) -> None:
        from services.router.hotspots.engine import CountEngine, EngineConfig

        self.engine = CountEngine(EngineConfig(**(overrides or {})), adjacency=adjacency,
                                  wards=wards)

    def _conv(self, alerts: Iterable[Any], now_s: int) -> list[BenchAlert]:
        return [BenchAlert(a.method_kind, a.category, frozenset({a.ward_code, *a.cluster}),
                           int(a.window_start.timestamp()), int(a.window_end.timestamp()), now_s,
                           a.count, round(a.expected, 2), a.p_value)
                for a in alerts]

    def add(self, batch: Sequence[tuple[str, str, str, int]], now_s: int) -> list[BenchAlert]:
        now = datetime.fromtimestamp(now_s, UTC)
        events = [(w, c, f, datetime.fromtimestamp(ev, UTC)) for w, c, f, ev in batch]
        return self._conv(self.engine.add(events, now), now_s)

    def finish(self, now_s: int) -> list[BenchAlert]:
        return self._conv(self.engine.tick(datetime.fromtimestamp(now_s, UTC)), now_s)

    def dropped(self) -> int:
        return self.engine.dropped()

    def dropped_by_kind(self) -> dict[str, int]:
        return {"late_counted": self.engine.late_counted_total(), "dropped": self.dropped()}


ADAPTERS: dict[str, Callable[[list[str], dict[str, frozenset[str]]], Any]] = {
    "old": OldAdapter, "new": NewAdapter}


# -- running and scoring ------------------------------------------------------------------------

def run_world(world: World, adapter: Any, wards: list[str], rec: Records
              ) -> tuple[list[BenchAlert], float]:
    order = np.argsort(rec.arrive_s, kind="stable")
    hour_of = rec.arrive_s[order] // 3600
    bounds = np.flatnonzero(np.diff(hour_of)) + 1
    alerts: list[BenchAlert] = []
    t0 = time.perf_counter()
    for chunk in np.split(order, bounds):
        if not len(chunk):
            continue
        now_s = int((rec.arrive_s[chunk[-1]] // 3600 + 1) * 3600)
        batch = [(wards[rec.ward[i]], CATEGORIES[rec.cat[i]], FEEDS[rec.cat[i]],
                  int(rec.event_s[i])) for i in chunk]
        alerts += adapter.add(batch, now_s)
    end = START_S + world.weeks * WEEK + 3 * DAY
    alerts += adapter.finish(end)
    return alerts, time.perf_counter() - t0


def score(world: World, alerts: list[BenchAlert], wards: list[str], rec: Records,
          adapter: Any) -> dict[str, Any]:
    code = {w: i for i, w in enumerate(wards)}
    eval_s = START_S + world.burn_in * WEEK
    end_s = START_S + world.weeks * WEEK
    ward_weeks = len(wards) * (world.weeks - world.burn_in)
    evaluated = [a for a in alerts if eval_s <= a.start_s < end_s]

    def matches(a: BenchAlert, p: Plant) -> bool:
        if a.category != CATEGORIES[p.category]:
            return False
        if not any(code[w] in p.wards for w in a.wards if w in code):
            return False
        return a.end_s > p.start_s() and a.start_s < p.end_s() + WEEK

    true_alerts = [a for a in evaluated if any(matches(a, p) for p in world.plants)]
    false_alerts = [a for a in evaluated if not any(matches(a, p) for p in world.plants)]
    by_method: dict[str, int] = defaultdict(int)
    for a in false_alerts:
        by_method[a.method] += 1
    out: dict[str, Any] = {
        "world": world.name, "k": world.k if math.isfinite(world.k) else None,
        "weeks": world.weeks, "burn_in": world.burn_in, "ward_weeks": ward_weeks,
        "records": len(rec.ward), "alerts": len(evaluated),
        "false_alerts": len(false_alerts),
        "false_per_100_ward_weeks": round(100 * len(false_alerts) / ward_weeks, 3),
        "false_per_100_by_method": {m: round(100 * n / ward_weeks, 3)
                                    for m, n in sorted(by_method.items())},
        # What the false alerts were (to see which part of the detector to fix).
        "false_detail": [{"method": a.method, "category": a.category, "wards": len(a.wards),
                          "week": (a.start_s - START_S) // WEEK, "count": a.count,
                          "expected": a.expected, "p": float(f"{a.p:.3g}")}
                         for a in false_alerts[:20]],
        "dropped_records": adapter.dropped(),
        "dropped_detail": adapter.dropped_by_kind(),
    }
    clusters = [p for p in world.plants if p.kind in ("single", "group")]
    if clusters:
        out["true_alerts"] = len(true_alerts)
        out["precision"] = round(len(true_alerts) / len(evaluated), 3) if evaluated else None
        catchable = [p for p in clusters if p.catchable]
        found = []
        delays: dict[str, list[float]] = defaultdict(list)
        for p in catchable:
            hits = [a for a in evaluated if matches(a, p)]
            if hits:
                found.append(p)
            first: dict[str, int] = {}
            for a in hits:
                first[a.method] = min(first.get(a.method, a.raised_s), a.raised_s)
            for m, t in first.items():
                delays[m].append((t - p.start_s()) / DAY)
            if hits:
                delays["any"].append((min(first.values()) - p.start_s()) / DAY)
        out["clusters"] = len(clusters)
        out["catchable"] = len(catchable)
        out["found_catchable"] = len(found)
        out["recall_catchable"] = round(len(found) / len(catchable), 3) if catchable else None
        # The same against the NB-approximation oracle used before the exact tail.
        catchable_nb = [p for p in clusters if p.catchable_nb]
        found_nb = [p for p in catchable_nb if any(matches(a, p) for a in evaluated)]
        out["catchable_nb"] = len(catchable_nb)
        out["found_catchable_nb"] = len(found_nb)
        out["recall_catchable_nb"] = (round(len(found_nb) / len(catchable_nb), 3)
                                      if catchable_nb else None)
        out["recall_all"] = round(
            sum(any(matches(a, p) for a in evaluated) for p in clusters) / len(clusters), 3)
        out["delay_days_median_by_method"] = {m: round(float(np.median(v)), 2)
                                              for m, v in sorted(delays.items())}
        out["missed"] = [{"kind": p.kind, "category": CATEGORIES[p.category],
                          "wards": len(p.wards), "factor": p.factor, "weeks": p.weeks,
                          "week": p.start_week, "oracle_p": float(f"{p.oracle_p:.3g}"),
                          "oracle_p_se": float(f"{p.oracle_p_se:.2g}"),
                          "oracle_p_nb": float(f"{p.oracle_p_nb:.3g}")}
                         for p in catchable if p not in found]
    shifts = [p for p in world.plants if p.kind in ("shift", "county-shift")]
    if shifts:
        runs = []
        weeks_alerting = []
        for p in shifts:
            for w in p.wards:
                ws = sorted({(a.start_s - START_S) // WEEK for a in evaluated
                             if a.category == CATEGORIES[p.category]
                             and w in {code.get(x, -1) for x in a.wards}
                             and (a.start_s - START_S) // WEEK >= p.start_week})
                weeks_alerting.append(len(ws))
                best = cur = 0
                prev = None
                for x in ws:
                    cur = cur + 1 if prev is not None and x == prev + 1 else 1
                    best = max(best, cur)
                    prev = x
                runs.append(best)
        out["shift_cells"] = len(runs)
        out["shift_max_consecutive_alert_weeks"] = max(runs)
        out["shift_mean_weeks_alerting"] = round(float(np.mean(weeks_alerting)), 2)
        out["shift_cells_over_two_weeks"] = int(sum(r > 2 for r in runs))
    return out


def worlds(weeks: int, burn_in: int) -> dict[str, World]:
    return {
        "null-poisson": World("null-poisson", math.inf, weeks, burn_in),
        "null-moderate": World("null-moderate", 10.0, weeks, burn_in),
        "null-strong": World("null-strong", 2.5, weeks, burn_in),
        "clusters-moderate": World("clusters-moderate", 10.0, weeks, burn_in),
        "clusters-strong": World("clusters-strong", 2.5, weeks, burn_in),
        "shift-moderate": World("shift-moderate", 10.0, weeks, burn_in),
        "late-moderate": World("late-moderate", 10.0, weeks, burn_in, late_feeds=True),
    }


def markdown_table(paths: list[Path]) -> str:
    """Markdown table comparing result files (one column pair per file)."""
    runs = [json.loads(p.read_text()) for p in paths]
    out: list[str] = []
    # A ("/", key) row: key / clusters. Other tuples: a key inside a dict-valued key.
    rows: list[tuple[str, str | tuple[str, str]]] = [
        ("seeds", "seeds"),
        ("false alerts /100 ward-weeks", "false_per_100_ward_weeks"),
        ("  worst seed", "false_per_100_worst_seed"),
        ("  of which hour", ("false_per_100_by_method", "hour")),
        ("  of which day", ("false_per_100_by_method", "day")),
        ("  of which week", ("false_per_100_by_method", "week")),
        ("  of which CUSUM", ("false_per_100_by_method", "cusum")),
        ("  of which scan", ("false_per_100_by_method", "scan")),
        ("precision", "precision"),
        ("  worst seed", "precision_worst_seed"),
        ("recall (catchable clusters)", "recall_catchable"),
        ("  worst seed", "recall_worst_seed"),
        ("catchable / planted clusters", ("/", "catchable")),
        ("recall (NB oracle)", "recall_catchable_nb"),
        ("catchable (NB oracle) / planted", ("/", "catchable_nb")),
        ("median delay, any method (days)", ("delay_days_median_by_method", "any")),
        ("median delay, hour windows", ("delay_days_median_by_method", "hour")),
        ("median delay, day windows", ("delay_days_median_by_method", "day")),
        ("median delay, week windows", ("delay_days_median_by_method", "week")),
        ("median delay, CUSUM", ("delay_days_median_by_method", "cusum")),
        ("median delay, scan", ("delay_days_median_by_method", "scan")),
        ("step: most consecutive alerting weeks", "shift_max_consecutive_alert_weeks"),
        ("step: cells alerting > 2 weeks running", "shift_cells_over_two_weeks"),
        ("step: mean weeks alerting per shifted cell", "shift_mean_weeks_alerting"),
        ("records dropped", "dropped_records"),
        ("seconds", "seconds"),
    ]
    worlds_ = [r["world"] for r in runs[0]["results"]]
    out.append("seeds: " + " | ".join(f"{run['detector']} {run.get('seeds', run.get('seed'))}"
                                      for run in runs))
    for world in worlds_:
        cols: list[dict[str, Any]] = [
            next((r for r in run["results"] if r["world"] == world), {}) for run in runs]
        out.append(f"\n**{world}**\n")
        out.append("| measure | " + " | ".join(run["detector"] for run in runs) + " |")
        out.append("|---" * (len(runs) + 1) + "|")
        for label, key in rows:
            vals = []
            for c in cols:
                v: Any
                if isinstance(key, tuple) and key[0] == "/":
                    v = f"{c[key[1]]} / {c['clusters']}" if key[1] in c else None
                elif isinstance(key, tuple):
                    v = c.get(key[0], {}).get(key[1]) if key[0] in c else None
                    if v is None and key[0] in c and key[0].startswith("false"):
                        v = 0.0
                else:
                    v = c.get(key)
                vals.append("" if v is None else str(v))
            if any(vals):
                out.append(f"| {label} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One world over several seeds: sums pooled (not a mean of ratios), worst seed kept."""
    first = rows[0]
    ward_weeks = sum(r["ward_weeks"] for r in rows)
    false = sum(r["false_alerts"] for r in rows)
    by_method: dict[str, int] = defaultdict(int)
    for r in rows:
        for m, v in r["false_per_100_by_method"].items():
            by_method[m] += round(v * r["ward_weeks"] / 100)
    out: dict[str, Any] = {
        "world": first["world"], "k": first["k"], "seeds": [r["seed"] for r in rows],
        "ward_weeks": ward_weeks, "alerts": sum(r["alerts"] for r in rows),
        "false_alerts": false,
        "false_per_100_ward_weeks": round(100 * false / ward_weeks, 3),
        "false_per_100_worst_seed": max(r["false_per_100_ward_weeks"] for r in rows),
        "false_per_100_by_method": {m: round(100 * n / ward_weeks, 3)
                                    for m, n in sorted(by_method.items())},
        "dropped_records": sum(r["dropped_records"] for r in rows),
        "seconds": round(sum(r["seconds"] for r in rows), 1),
    }
    if all("oracle_seconds" in r for r in rows):
        out["oracle_seconds"] = round(sum(r["oracle_seconds"] for r in rows), 1)
    if "precision" in first:
        alerts = out["alerts"]
        true = sum(r["true_alerts"] for r in rows)
        catchable = sum(r["catchable"] for r in rows)
        found = sum(r["found_catchable"] for r in rows)
        out["precision"] = round(true / alerts, 3) if alerts else None
        out["precision_worst_seed"] = min((r["precision"] for r in rows
                                           if r["precision"] is not None), default=None)
        out["recall_catchable"] = round(found / catchable, 3) if catchable else None
        out["recall_worst_seed"] = min((r["recall_catchable"] for r in rows
                                        if r["recall_catchable"] is not None), default=None)
        out["clusters"] = sum(r["clusters"] for r in rows)
        out["catchable"] = catchable
        if all("catchable_nb" in r for r in rows):
            catchable_nb = sum(r["catchable_nb"] for r in rows)
            found_nb = sum(r["found_catchable_nb"] for r in rows)
            out["catchable_nb"] = catchable_nb
            out["found_catchable_nb"] = found_nb
            out["recall_catchable_nb"] = round(found_nb / catchable_nb, 3) if catchable_nb else None
        delays: dict[str, list[float]] = defaultdict(list)
        for r in rows:
            for m, v in r["delay_days_median_by_method"].items():
                delays[m].append(v)
        out["delay_days_median_by_method"] = {  # median over seeds of each seed's median
            m: round(float(np.median(v)), 2) for m, v in sorted(delays.items())}
    if "shift_cells" in first:
        out["shift_max_consecutive_alert_weeks"] = max(
            r["shift_max_consecutive_alert_weeks"] for r in rows)
        out["shift_cells_over_two_weeks"] = sum(r["shift_cells_over_two_weeks"] for r in rows)
        out["shift_mean_weeks_alerting"] = round(float(np.mean(
            [r["shift_mean_weeks_alerting"] for r in rows])), 2)
    return out


def _null_exact(rec: Records, k: float, sim_seed: int, t: tuple[int, int, int, int, float],
                draws: int, level: float) -> tuple[float, float]:
    """Exact p of one single-cell test (cell, start week, j weeks, count, NB p)."""
    cell, start, j, y, _ = t
    rng = np.random.default_rng([sim_seed, 2, cell, start, j])
    block = rec.null_mu_day[cell, start * 7:(start + j) * 7]
    return exact_upper(y, block, k, rng, draws, refine_near=level)


def oracle_calibration(wards: list[str], weeks: int = 30, burn_in: int = 12,
                       seeds: Sequence[int] = (17,), max_j: int = 4, check_n: int = 300,
                       draws: int = EXACT_DRAWS, check_draws: int = 100_000
                       ) -> dict[str, Any]:
    """How often each known-rate oracle rejects on pure null data at the oracle's level.

    The null worlds of the table (null-moderate k = 10, null-strong k = 2.5; same seeds as a
    benchmark run) are simulated without plants; every single-cell sum over j = 1..max_j weeks
    from every start week is one test. The NB p is computed for all; the exact p only where the
    NB p < 1e-3, and a sample of ``check_n`` sums with NB p in [1e-3, 1e-2] (``check_draws``
    each, refined near the level) checks that none of those could reach the level. Tests
    overlap (one cell, shifted windows), so the rejection counts are correlated: read them as
    rough rates, not a precise test of calibration.
    """
    level = oracle_level(len(wards))
    table = worlds(weeks, burn_in)
    out: dict[str, Any] = {"level": level, "weeks": weeks, "max_j": max_j, "draws": draws,
                           "check_draws": check_draws,
                           "exact_computed_if_nb_below": 1e-3, "results": []}
    for name in ("null-moderate", "null-strong"):
        for seed in seeds:
            t0 = time.perf_counter()
            world = table[name]
            sim_seed = seed * 1000 + 100 + list(table).index(name)
            rec = simulate(world, wards, sim_seed)
            alpha = 1.0 / world.k
            tests: list[tuple[int, int, int, int, float]] = []  # cell, start, j, y, NB p
            nb_all = []
            cs = np.cumsum(np.pad(rec.counts, ((0, 0), (1, 0))), axis=1)
            cm = np.cumsum(np.pad(rec.null_mu, ((0, 0), (1, 0))), axis=1)
            cm2 = np.cumsum(np.pad(rec.null_mu ** 2, ((0, 0), (1, 0))), axis=1)
            for j in range(1, max_j + 1):
                y = cs[:, j:] - cs[:, :-j]
                mu = cm[:, j:] - cm[:, :-j]
                size = mu ** 2 / (alpha * (cm2[:, j:] - cm2[:, :-j]))
                nb = np.where(y > 0, betainc(np.maximum(y, 1), size, mu / (size + mu)), 1.0)
                nb_all.append(nb.ravel())
                for cell, start in zip(*np.nonzero(nb < 1e-2), strict=True):
                    tests.append((int(cell), int(start), j, int(y[cell, start]),
                                  float(nb[cell, start])))
            nb_flat = np.concatenate(nb_all)
            n_tests = len(nb_flat)
            low = [t for t in tests if t[4] < 1e-3]
            ex_low = [_null_exact(rec, world.k, sim_seed, t, draws, level) for t in low]
            mid = [t for t in tests if t[4] >= 1e-3]
            pick = np.random.default_rng([sim_seed, 3]).permutation(len(mid))[:check_n]
            ex_mid = [_null_exact(rec, world.k, sim_seed, mid[int(i)], check_draws, level)
                      for i in sorted(pick)]
            ratio = [e[0] / t[4] for t, e in zip(low, ex_low, strict=True)]
            i_min = int(np.argmin([e[0] for e in ex_mid])) if ex_mid else -1
            out["results"].append({
                "world": name, "k": world.k, "seed": seed, "tests": n_tests,
                "expected_at_level": round(n_tests * level, 3),
                "nb_rejections": int((nb_flat <= level).sum()),
                "exact_rejections": int(sum(e[0] <= level for e in ex_low)),
                # Decisions an MC error could flip: |exact p - level| < 2 se.
                "exact_within_2se_of_level": int(sum(abs(e[0] - level) < 2 * e[1]
                                                     for e in ex_low)),
                # Exact counts only where every exact p <= lv has NB p < 1e-3 (the check).
                "by_level": {f"{lv:g}": {"expected": round(n_tests * lv, 2),
                                         "nb": int((nb_flat <= lv).sum()),
                                         **({"exact": int(sum(e[0] <= lv for e in ex_low))}
                                            if lv <= 1e-4 else {})}
                             for lv in (1e-2, 1e-3, 1e-4, level)},
                "exact_computed": len(low),
                "exact_over_nb_ratio_where_nb_below_1e-3": {
                    "median": float(f"{np.median(ratio):.3g}") if ratio else None,
                    "min": float(f"{min(ratio):.3g}") if ratio else None,
                    "max": float(f"{max(ratio):.3g}") if ratio else None},
                "check_nb_1e-3_to_1e-2": {
                    "sums": len(mid), "checked": len(ex_mid),
                    "min_exact_p": float(f"{ex_mid[i_min][0]:.3g}") if ex_mid else None,
                    "its_se": float(f"{ex_mid[i_min][1]:.2g}") if ex_mid else None,
                    "its_nb_p": float(f"{mid[int(sorted(pick)[i_min])][4]:.3g}")
                    if ex_mid else None,
                    "exact_at_or_below_level": int(sum(e[0] <= level for e in ex_mid))},
                "seconds": round(time.perf_counter() - t0, 1),
            })
            print(json.dumps(out["results"][-1]), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detector", choices=sorted(ADAPTERS), default="new")
    ap.add_argument("--worlds", nargs="*", default=None)
    ap.add_argument("--weeks", type=int, default=30)
    ap.add_argument("--burn-in", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="default 17 18 19 (17 for --oracle-calibration)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=NUMBER",
                    help="override an EngineConfig number (new detector; for experiments)")
    ap.add_argument("--table", nargs="+", type=Path, default=None,
                    help="print a markdown table of these result files and exit")
    ap.add_argument("--merge", nargs="+", type=Path, default=None,
                    help="join result files of one detector (different worlds) into --out")
    ap.add_argument("--oracle-calibration", action="store_true",
                    help="how often each known-rate oracle rejects on null worlds; writes "
                         "results/hotspot-oracle-calibration.json (or --out) and exits")
    args = ap.parse_args(argv)
    if args.oracle_calibration:
        cal = oracle_calibration(herts_wards()[0], args.weeks, args.burn_in, args.seeds or [17])
        print(json.dumps(cal, indent=2))
        target = args.out or RESULTS / "hotspot-oracle-calibration.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(cal, indent=2) + "\n")
        print(f"wrote {target}")
        return 0
    args.seeds = args.seeds or [17, 18, 19]
    if args.table:
        print(markdown_table(args.table))
        return 0
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        merged = {**parts[0], "merged_from": [str(p) for p in args.merge],
                  "wall_seconds": round(sum(p_.get("wall_seconds", 0) for p_ in parts), 1),
                  "results": [r for p_ in parts for r in p_["results"]],
                  "per_seed": {k: v for p_ in parts for k, v in p_.get("per_seed", {}).items()}}
        merged["seeds"] = sorted({s for p_ in parts for s in p_.get("seeds", [])})
        target = args.out or RESULTS / f"hotspot-sim-{args.detector}.json"
        target.write_text(json.dumps(merged, indent=2) + "\n")
        print(f"wrote {target}")
        return 0
    wards, adjacency = herts_wards()
    adj_idx = [[wards.index(n) for n in sorted(adjacency[w])] for w in wards]
    table = worlds(args.weeks, args.burn_in)
    names = args.worlds or list(table)
    overrides = {k: float(v) if "." in v else int(v)
                 for k, v in (item.split("=", 1) for item in args.set)}
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    t0 = time.perf_counter()
    for seed in args.seeds:
        for name in names:
            # Seeded by the world's place in the fixed table, not in --worlds: a world run
            # alone is the same world as in a full run.
            i = list(table).index(name)
            world = worlds(args.weeks, args.burn_in)[name]
            rng = np.random.default_rng(seed * 1000 + i)
            if name.startswith("clusters"):
                world.plants = plant_clusters(rng, world, adj_idx)
            elif name.startswith("shift"):
                world.plants = plant_shifts(rng, world, len(wards))
            rec = simulate(world, wards, seed * 1000 + 100 + i)
            t_oracle = time.perf_counter()
            mark_catchable(world, rec, len(wards), seed * 1000 + 100 + i)
            t_oracle = time.perf_counter() - t_oracle
            adapter = (NewAdapter(wards, adjacency, overrides) if args.detector == "new"
                       else ADAPTERS[args.detector](wards, adjacency))
            alerts, seconds = run_world(world, adapter, wards, rec)
            row = score(world, alerts, wards, rec, adapter)
            row["seed"] = seed
            row["seconds"] = round(seconds, 1)
            row["oracle_seconds"] = round(t_oracle, 1)
            runs[name].append(row)
            print(json.dumps(row), flush=True)
    wall = time.perf_counter() - t0
    results = [pooled(runs[name]) for name in names]
    for row in results:
        print(json.dumps({k: v for k, v in row.items() if "by_method" not in k}), flush=True)
    out = args.out or RESULTS / f"hotspot-sim-{args.detector}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out.write_text(json.dumps({
        "detector": args.detector, "overrides": overrides, "seeds": args.seeds, "weeks": args.weeks,
        "burn_in": args.burn_in, "wall_seconds": round(wall, 1), "load_average_1m_at_end": load,
        "results": results, "per_seed": runs}, indent=2) + "\n")
    print(f"wrote {out} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
