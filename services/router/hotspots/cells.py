"""Per-category state of the hot-spot engine: one row per ward of every array (study wards
first, wards outside the study area appended when first seen), and its snapshot form.

What the arrays mean is in :mod:`.engine`'s docstring; :mod:`.baseline` refits them at each week
close and :mod:`.closes` tests windows against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .timeline import HOURS_OF_WEEK, hour_of_week


class CategoryCells:
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
        # Week (index) of each ward's last hour or day alert: one burst is one alert a week.
        self.short_alert = np.full(len(self.wards), -10, dtype=np.int64)
        self.recent_mu = np.zeros((len(self.wards), 0))  # predictions of the last scan weeks
        self.recent_a = np.zeros((len(self.wards), 0))
        self.profile = np.zeros(HOURS_OF_WEEK)
        self.disp: dict[str, list[float]] = {}  # kind -> [num, den] decayed moment sums
        # Partner feeds that have sent records of this category: a window is tested when every
        # one of their watermarks has passed it (or allowed lateness is over).
        self.sources: set[str] = set()

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
        self.short_alert = np.append(self.short_alert, -10)
        self.recent_mu = np.vstack([self.recent_mu, np.zeros((1, self.recent_mu.shape[1]))])
        self.recent_a = np.vstack([self.recent_a, np.zeros((1, self.recent_a.shape[1]))])
        return i

    def share(self, kind: str, start_s: int) -> float:
        """Share of a week's events expected in the window of ``kind`` starting at start_s."""
        prior = self.profile + max(self.profile.sum(), 1.0) / HOURS_OF_WEEK * 0.05
        total = prior.sum()
        h = hour_of_week(start_s)
        if kind == "hour":
            return float(prior[h] / total)
        return float(prior[h:h + 24].sum() / total)

    _ARRAYS = ("hist", "alpha", "pred", "pred_v", "shift", "pending", "cusum", "cusum_from",
               "last_alert", "recent_mu", "recent_a", "profile")

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).tolist() for name in self._ARRAYS}
        # Counts are whole numbers: as ints the history is a third of its JSON size.
        state["hist"] = self.hist.astype(np.int64).tolist()
        state["short_alert"] = self.short_alert.tolist()  # optional: older snapshots lack it
        state.update(feed=self.feed, wards=self.wards, start_week=self.start_week,
                     last_week=self.last_week, hist_weeks=self.hist_weeks,
                     alpha_pool=self.alpha_pool, disp=self.disp, sources=sorted(self.sources))
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any], history: int) -> CategoryCells:
        self = cls(state["feed"], state["wards"], history, int(state["start_week"]))
        self.last_week = int(state["last_week"])
        self.hist_weeks = int(state["hist_weeks"])
        self.alpha_pool = float(state["alpha_pool"])
        self.disp = {k: [float(a), float(b)] for k, (a, b) in state["disp"].items()}
        self.sources = set(state.get("sources", [self.feed]))
        n = len(self.wards)
        self.short_alert = np.asarray(state.get("short_alert", [-10] * n), dtype=np.int64)
        for name in self._ARRAYS:
            dtype = np.int64 if name in ("shift", "pending", "cusum_from", "last_alert") else float
            value = np.asarray(state[name], dtype=dtype)
            if name in ("recent_mu", "recent_a", "hist"):
                value = value.reshape(n, -1)
            setattr(self, name, value)
        return self


__all__ = ["CategoryCells"]
