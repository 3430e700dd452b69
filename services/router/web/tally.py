"""Per-ward counts for the group's map: this week's count against the expected count. Pure.

The window is the detector's week (Monday 00:00 UTC, ``window_index``) and "this week" is the
week of the latest event time seen, not of the wall clock, so a replayed month still shows its
own last week. Event times in the future of ``now`` are clamped so one mistyped date cannot move
the whole map into an empty week.

Expected is a bias-corrected EWMA (the detector's ``EwmaState``, same six-week half-life) over
the completed weeks since the group's first delivery, empty weeks counting as zero. It is the
page's own estimate over the group's deliveries, all categories together; an alert carries the
detector's per-category expectation, which is what the evidence panel shows. With no completed
week yet there is no baseline and the ward is drawn as such rather than against a made-up one.

State: ``horizon_weeks`` + 1 counters per ward that has had a delivery, whatever the number of
records; older weeks are dropped as time moves on (they weigh < 2^-2 at the default horizon).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.router.hotspots.detector import window_bounds, window_index
from services.router.hotspots.stats import EwmaState, ewma_smoothing

Band = Literal["no-baseline", "below", "as-expected", "above", "well-above"]


@dataclass(frozen=True)
class WardStatus:
    ward_code: str
    count: int
    expected: float | None
    band: Band

    def public_count(self, suppress_below: int) -> str:
        return f"<{suppress_below}" if 0 < self.count < suppress_below else str(self.count)


def band_of(count: int, expected: float | None) -> Band:
    """Ratio bands; one event added to both sides so a quiet ward does not turn "well above"
    on a single event."""
    if expected is None:
        return "no-baseline"
    ratio = (count + 1.0) / (expected + 1.0)
    if ratio < 0.75:
        return "below"
    if ratio < 1.5:
        return "as-expected"
    if ratio < 2.5:
        return "above"
    return "well-above"


class WardTally:
    def __init__(self, *, halflife_weeks: float = 6.0, horizon_weeks: int = 12) -> None:
        self.smoothing = ewma_smoothing(halflife_weeks)
        self.horizon = horizon_weeks
        self.counts: dict[str, dict[int, int]] = defaultdict(dict)
        self.first_week: int | None = None
        self.current: int | None = None
        self.seen = 0
        self.dropped_old = 0

    def add(self, ward_code: str, when: datetime, now: datetime) -> None:
        week = window_index("week", min(when, now))
        if self.current is None or week > self.current:
            self.current = week
            self._prune()
        if week < self.current - self.horizon:
            self.dropped_old += 1
            return
        self.first_week = week if self.first_week is None else min(self.first_week, week)
        per_week = self.counts[ward_code]
        per_week[week] = per_week.get(week, 0) + 1
        self.seen += 1

    def _prune(self) -> None:
        assert self.current is not None
        oldest = self.current - self.horizon
        for per_week in self.counts.values():
            for week in [w for w in per_week if w < oldest]:
                del per_week[week]
        if self.first_week is not None:
            self.first_week = max(self.first_week, oldest)

    def window(self) -> tuple[datetime, datetime] | None:
        return window_bounds("week", self.current) if self.current is not None else None

    def status(self, ward_code: str) -> WardStatus:
        if self.current is None or self.first_week is None:
            return WardStatus(ward_code, 0, None, "no-baseline")
        per_week = self.counts.get(ward_code, {})
        count = per_week.get(self.current, 0)
        state = EwmaState()
        for week in range(self.first_week, self.current):
            state = state.update(per_week.get(week, 0), self.smoothing)
        expected = state.mean
        return WardStatus(ward_code, count, expected, band_of(count, expected))

    def state_size(self) -> int:
        return sum(len(v) for v in self.counts.values())
