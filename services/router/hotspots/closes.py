"""Testing closed windows of the hot-spot engine: week closes (NB window test, level-shift
confirmation, CUSUM, the space-time scan, Gi* as evidence), day and hour closes, re-tests of
windows that late records changed, and the alerts they raise. Reasons: :mod:`.engine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .baseline import append_week
from .cells import CategoryCells
from .detector import Alert
from .engine_config import EngineConfig
from .explain import explain
from .getis_ord import gi_star
from .nb import nb_cusum_llr, nb_upper_p_array, two_level_upper_p_array
from .scan import build_zones, scan
from .stats import benjamini_hochberg
from .timeline import LENGTH, index_of, start_of


@dataclass(slots=True)
class Window:
    counts: dict[str, int] = field(default_factory=dict)
    protocols: dict[str, str] = field(default_factory=dict)
    tested: bool = False
    alerted: set[str] = field(default_factory=set)
    # Wards whose count changed after the test (late records); re-tested when it retires.
    changed: set[str] = field(default_factory=set)


class WindowTests:
    """The tests of one county's study area (its wards, adjacency and scan zones)."""

    def __init__(self, config: EngineConfig, study: Sequence[str],
                 adjacency: Mapping[str, frozenset[str]], districts: Mapping[str, str]) -> None:
        self.config = config
        self._study = list(study)
        self._adjacency = adjacency
        self._districts = districts
        self._zones, self._zone_matrix = build_zones(self._study, self._adjacency,
                                                      config.scan_neighbours)

    def test(self, cat: CategoryCells | None, kind: str, name: str, idx: int, window: Window,
             wards: list[str], late: bool = False) -> list[Alert]:
        if cat is None:
            return []
        if kind == "week":
            if late:
                return self._retest_week(cat, name, idx, window, wards)
            return self._close_week(cat, name, idx, window)
        return self._close_short(kind, cat, name, idx, window, wards, late)

    def _week_p(self, count: np.ndarray, mu: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """Upper tail of week counts (or sums of weeks) under the configured predictive.

        The two-level tail is only computed where the NB's is already small: in the body of
        the distribution the two agree, and the extra cost is a 96-node integral per row.
        """
        p = nb_upper_p_array(count, mu, alpha)
        if self.config.two_level_tail:
            rows = np.flatnonzero(p < 0.01)
            if len(rows):
                c, m, a = np.broadcast_arrays(count, mu, alpha)
                p[rows] = two_level_upper_p_array(c[rows], m[rows], a[rows])
        return p

    def _family_alpha(self, kind: str) -> float:
        return self.config.alpha * LENGTH[kind] / LENGTH["week"]

    def _close_short(self, kind: str, cat: CategoryCells, name: str, idx: int, window: Window,
                     wards: list[str], late: bool) -> list[Alert]:
        start = start_of(kind, idx)
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
            # bench/hotspot_sim.py's strong world to their nominal level (notes/issue-17.md);
            # the two-level tail on top (short_two_level) stopped one-in-10,000 null days of
            # its later seeds alerting as p ~ 1e-6.
            alpha = self.config.short_tail * np.maximum(a_kind, cat.alpha) + cat.pred_v
            week = index_of("week", start)
            rows = [cat.index[w] for w in wards if window.counts.get(w, 0) >= self.config.min_count
                    and not (self.config.one_burst_alert and cat.short_alert[cat.index[w]] == week)]
            tail = self._week_p if self.config.short_two_level else nb_upper_p_array
            p = tail(y[rows], mu[rows], alpha[rows]) if rows else np.array([])
            result = benjamini_hochberg(list(p), self._family_alpha(kind), family_size=max(n, 1))
            for j, hit in enumerate(result.rejected):
                i = rows[j]
                ward = cat.wards[i]
                if not hit or ward in window.alerted:
                    continue
                window.alerted.add(ward)
                cat.short_alert[i] = week
                alerts.append(self._alert(kind, name, ward, start, start + LENGTH[kind],
                                          int(y[i]), float(mu[i]), float(p[j]),
                                          result.threshold, "nb-window", float(alpha[i]),
                                          window.protocols.get(ward), late=late))
            if not late:
                decay = self.config.profile_decay ** (LENGTH[kind] / LENGTH["week"])
                cat.disp[kind] = [num * decay + float(((y - mu) ** 2 - mu).sum()),
                                  den * decay + float((mu * mu).sum())]
        return alerts

    def _retest_week(self, cat: CategoryCells, name: str, idx: int, window: Window,
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
            p = float(self._week_p(np.array([y], float), np.array([mu]), np.array([a]))[0])
            threshold = self._family_alpha("week") / max(len(cat.wards), 1)
            if p <= threshold:
                window.alerted.add(ward)
                start = start_of("week", idx)
                alerts.append(self._alert("week", name, ward, start, start + LENGTH["week"], y,
                                          mu, p, threshold, "nb-window", a,
                                          window.protocols.get(ward), late=True))
        return alerts

    def _close_week(self, cat: CategoryCells, name: str, idx: int, window: Window) -> list[Alert]:
        cfg = self.config
        n = len(cat.wards)
        # Weeks with no records at all still happened: fold them in as zero weeks first.
        while cat.last_week < idx - 1:
            append_week(self.config, cat, np.zeros(n), cat.last_week + 1)
        y = np.zeros(n)
        for ward, count in window.counts.items():
            y[cat.index[ward]] = count
        alerts: list[Alert] = []
        start = start_of("week", idx)
        end = start + LENGTH["week"]
        warm = cat.hist_weeks >= cfg.warmup_weeks
        mu = np.maximum(cat.pred, 1e-6)
        # week_tail widens the NB tail of every week test (see EngineConfig.week_tail).
        alpha = (cat.alpha + cat.pred_v) * cfg.week_tail
        cell_hits: dict[int, dict[str, Any]] = {}
        if warm:
            p_all, run, y_run, mu_run = self._week_runs(cat, idx, y, mu)
            rows = np.flatnonzero(p_all < 1.0)
            p = p_all[rows]
            result = benjamini_hochberg(list(p), self._family_alpha("week"), family_size=n)
            for j, rejected in enumerate(result.rejected):
                if rejected:
                    i = int(rows[j])
                    cell_hits[i] = {"method": "nb-window", "p": float(p[j]),
                                    "threshold": result.threshold, "from": idx - int(run[i]) + 1,
                                    "count": int(y_run[i]), "expected": float(mu_run[i])}
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
                pc_ = float(self._week_p(np.array([ys], float), np.array([ms]),
                                         alpha[i:i + 1])[0])
                if pc_ > cfg.cusum_confirm_p:
                    # The CUSUM's likelihood ratio alarms on heavy-tailed noise too (one wild
                    # week counts fully); an alarm whose run is not even unusual as a whole
                    # under the NB is not raised, and the sum restarts.
                    cat.cusum[i] = 0.0
                    continue
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
            if cfg.frozen_baseline:
                weeks = min(weeks, self._warm_span(cat))
            ns = len(self._study)
            obs = np.column_stack([cat.hist[:ns, cat.hist.shape[1] - (weeks - 1):]
                                   if weeks > 1 else np.zeros((ns, 0)), y[:ns]])
            exp_ = np.column_stack([cat.recent_mu[:ns, cat.recent_mu.shape[1] - (weeks - 1):]
                                    if weeks > 1 else np.zeros((ns, 0)), mu[:ns]])
            scan_alpha = alpha[:ns]
            if cfg.frozen_baseline and weeks > 1:
                exp_, scan_alpha = self._before_window(cat, idx, weeks, exp_, scan_alpha)
            # Conditioned on the county's total each week, as the space-time permutation scan
            # is: a county-wide trend or recording change is no cluster, and without this the
            # big zones summed the small shortfall of every ward's baseline into significance.
            # Only wards that have ever had a record of the category enter the total: a ward
            # with none has a pseudo-count baseline (baseline.refit), and 185 of those made a
            # lone active ward's expected a tenth of its steady count (a false scan alert).
            seen = (cat.hist[:ns].sum(axis=1) + y[:ns]) > 0
            ratio = obs.sum(axis=0) / np.maximum(exp_[seen].sum(axis=0), 1e-9)
            exp_ = exp_ * np.where(ratio > 0, ratio, 1.0)[None, :]
            clusters = scan(obs, np.maximum(exp_, 1e-6), scan_alpha, self._zones,
                            self._zone_matrix, self._study, seed_key=f"{name}/{idx}",
                            replicates=cfg.scan_replicates, level=cfg.scan_level,
                            two_level=cfg.two_level_tail, nb_score=cfg.scan_nb_score)
        covered: set[int] = set()
        for cl in clusters:
            rows_ = [cat.index[w] for w in cl.wards]
            # A ward is news if it alerted neither last week nor inside this window: with
            # the baseline frozen before the window, a window reaching back over a raised
            # alert would raise the same excess again.
            fresh = [i for i in rows_ if cat.last_alert[i] < idx - max(cl.weeks, 2) + 1]
            if len(cl.wards) == 1 and rows_[0] in cell_hits:
                continue  # one ward: its own cell alert says it with more detail
            if not fresh:
                covered.update(rows_)
                continue
            covered.update(rows_)
            cstart = start - (cl.weeks - 1) * LENGTH["week"]
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
            if "count" in hit:
                ys, ms = hit["count"], hit["expected"]
            alerts.append(self._alert(
                "week", name, ward, start_of("week", since), end, ys, ms, hit["p"],
                hit["threshold"], hit["method"], float(alpha[i]), window.protocols.get(ward),
                weeks=idx - since + 1, evidence=hit.get("evidence")))
        if alerts and self._adjacency:
            # Gi* of the Pearson residuals, kept as evidence: is the excess spatially grouped?
            ns = len(self._study)
            resid = (y[:ns] - mu[:ns]) / np.sqrt(mu[:ns] + alpha[:ns] * mu[:ns] ** 2)
            gi = gi_star(dict(zip(self._study, resid.tolist(), strict=True)), self._adjacency,
                         areas=self._study)
            alerts = [replace(a, gi_z=gi.get(a.ward_code)) for a in alerts]
        append_week(self.config, cat, y, idx)
        return alerts

    def _week_runs(self, cat: CategoryCells, idx: int, y: np.ndarray, mu: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per cell, the most unusual run of the last 1..``evidence_weeks`` weeks ending now
        that contains no week already alerted: (p Bonferroni-adjusted for the runs looked at,
        run length, observed and expected count of that run). p = 1 where no run has
        ``min_count`` records.

        A sustained moderate excess (x1.5-x2 for weeks) is invisible week by week and found
        by its sum; the variance of a sum of j weeks is the sum of the weeks' variances (their
        random levels are independent) plus the shared uncertainty of the fitted mean.
        """
        cfg = self.config
        n = len(y)
        longest = min(cfg.evidence_weeks, cat.recent_mu.shape[1] + 1, cat.hist_weeks + 1)
        if cfg.frozen_baseline:
            longest = min(longest, self._warm_span(cat))
        sum_y, sum_mu, sum_m2 = y.astype(float), mu.copy(), mu * mu
        best_p, best_run = np.ones(n), np.ones(n)
        best_y, best_mu = y.astype(float), mu.copy()
        looked = np.zeros(n)
        h, r_cols = cat.hist.shape[1], cat.recent_mu.shape[1]
        a_week = cat.alpha
        for run in range(1, longest + 1):
            if run > 1:
                sum_y = sum_y + cat.hist[:, h - run + 1]
                m = np.maximum(cat.recent_mu[:, r_cols - run + 1], 1e-6)
                sum_mu, sum_m2 = sum_mu + m, sum_m2 + m * m
                if cfg.frozen_baseline:
                    # The run is tested against what was predicted before it began: the weeks
                    # inside it have already pulled the later predictions up. A step confirmed
                    # from two weeks before the run's first week on was not in that prediction
                    # (a step is confirmed a week after it alerts): such a cell keeps its
                    # per-week predictions, the step model's. recent_a holds alpha plus the
                    # mean's uncertainty then; today's uncertainty stands in for the latter.
                    keep = cat.shift >= idx - run - 1
                    sum_mu = np.where(keep, sum_mu, run * m)
                    sum_m2 = np.where(keep, sum_m2, run * m * m)
                    a_first = cat.recent_a[:, r_cols - run + 1]
                    a_week = np.where(keep, cat.alpha, np.maximum(a_first - cat.pred_v, 0.0))
            fresh = cat.last_alert < idx - run + 1
            live = np.flatnonzero(fresh & (sum_y >= cfg.min_count))
            looked[fresh] += 1
            if not len(live):
                continue
            a_run = cfg.week_tail * (a_week[live] * sum_m2[live] / sum_mu[live] ** 2
                                     + cat.pred_v[live])
            p = self._week_p(sum_y[live], sum_mu[live], a_run)
            better = p < best_p[live]
            rows = live[better]
            best_p[rows], best_run[rows] = p[better], run
            best_y[rows], best_mu[rows] = sum_y[rows], sum_mu[rows]
        return np.minimum(best_p * np.maximum(looked, 1), 1.0), best_run, best_y, best_mu

    def _warm_span(self, cat: CategoryCells) -> int:
        """Longest window whose first week was predicted from ``warmup_weeks`` of history (a
        prediction made before that is a pseudo-count, not a baseline)."""
        return max(1, cat.hist_weeks - self.config.warmup_weeks + 1)

    @staticmethod
    def _before_window(cat: CategoryCells, idx: int, weeks: int, exp_: np.ndarray,
                       alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scan's baseline for the last ``weeks`` weeks: every week at the prediction made
        before the oldest of them (and its alpha), so a cluster that has run for weeks is not
        scored against a baseline it has already raised. A ward with a step that prediction
        did not yet know of keeps its per-week predictions (the step is its new level)."""
        ns = exp_.shape[0]
        col = cat.recent_mu.shape[1] - (weeks - 1)
        keep = (cat.shift[:ns] >= idx - weeks - 1)[:, None]
        first = np.maximum(cat.recent_mu[:ns, col], 1e-6)[:, None]
        out = np.where(keep, exp_, np.repeat(first, weeks, axis=1))
        return out, np.where(keep[:, 0], alpha, cat.recent_a[:ns, col])

    @staticmethod
    def _since(cat: CategoryCells, i: int, since: int, idx: int, y: np.ndarray,
               mu: np.ndarray) -> tuple[int, float]:
        """Observed and expected count of cell ``i`` from week ``since`` to ``idx``."""
        back = min(idx - since, cat.hist_weeks)
        past = float(cat.hist[i, cat.hist.shape[1] - back:].sum()) if back > 0 else 0.0
        return int(y[i] + past), float(mu[i]) * (back + 1)

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


__all__ = ["Window", "WindowTests"]
