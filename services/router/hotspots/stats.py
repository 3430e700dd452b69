"""Small, pure statistics for hot-spot detection: Poisson exceedance, Benjamini–Hochberg, EWMA.

Nothing here knows about wards or windows, so each piece can be checked against textbook values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from scipy.special import pdtrc


def poisson_exceedance_p(count: int, expected: float) -> float:
    """P(X >= count) for X ~ Poisson(expected): the one-sided p-value of an excess.

    This is ``scipy.stats.poisson.sf(count - 1, expected)``. ``pdtrc`` is the ufunc that method
    wraps, called directly because the frozen-distribution machinery costs ~130 us a call against
    ~3 us, and the detector scores every cell of every hourly close. A survival function rather
    than ``1 - cdf`` keeps precision in the far tail, where BH thresholds over hundreds of cells
    live.
    """
    if expected < 0 or math.isnan(expected):
        raise ValueError(f"expected must be a non-negative number, got {expected!r}")
    if count <= 0:
        return 1.0
    if expected == 0:
        # A Poisson(0) variable is always 0, so any positive count is impossible under the null.
        return 0.0
    return float(pdtrc(count - 1, expected))


@dataclass(frozen=True, slots=True)
class BHResult:
    """Outcome of one Benjamini–Hochberg step-up over a family of p-values."""

    rejected: tuple[bool, ...]
    # The critical value k*alpha/m for the largest passing rank k; 0.0 when nothing passes.
    threshold: float

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected)


def benjamini_hochberg(p_values: Sequence[float], alpha: float,
                       family_size: int | None = None) -> BHResult:
    """Benjamini–Hochberg (1995) step-up procedure controlling the false discovery rate at alpha.

    Every hypothesis whose p-value is <= the threshold is rejected, including ones whose own rank
    failed: that is the step-up rule, and it is what makes BH more powerful than step-down.

    ``family_size`` (m) may exceed ``len(p_values)``: the missing hypotheses are taken to have
    p = 1. They rank last and can never pass (the threshold never exceeds alpha < 1), so the
    result is exact while the caller skips building hundreds of p = 1 entries for empty cells.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    m = len(p_values) if family_size is None else family_size
    if m < len(p_values):
        raise ValueError(f"family_size {m} is smaller than the {len(p_values)} p-values given")
    if not p_values:
        return BHResult(rejected=(), threshold=0.0)
    order = sorted(range(len(p_values)), key=lambda i: (p_values[i], i))
    k_max = 0
    # alpha * (rank / m), not rank * alpha / m: the latter can round above alpha at rank m.
    for rank, idx in enumerate(order, start=1):
        if p_values[idx] <= alpha * (rank / m):
            k_max = rank
    if k_max == 0:
        return BHResult(rejected=(False,) * len(p_values), threshold=0.0)
    threshold = alpha * (k_max / m)
    return BHResult(rejected=tuple(p <= threshold for p in p_values), threshold=threshold)


def ewma_smoothing(halflife_windows: float) -> float:
    """Smoothing factor a such that an observation's weight halves every ``halflife_windows``."""
    if not halflife_windows > 0:
        raise ValueError(f"half-life must be positive, got {halflife_windows!r}")
    return 1.0 - 2.0 ** (-1.0 / halflife_windows)


def ewma_update(previous: float | None, observation: float, smoothing: float) -> float:
    """Classic EWMA step; the first observation seeds the average."""
    if previous is None:
        return observation
    return previous + smoothing * (observation - previous)


class EwmaState(NamedTuple):
    """Exponentially weighted mean with start-up bias correction.

    ``total`` and ``weight`` are both EWMAs (of the observations and of 1), so ``total / weight``
    weighs the first few windows fairly instead of letting the first one dominate (seeding) or
    dragging the mean towards 0 (zero start). ``windows`` counts windows seen, for warm-up.
    A NamedTuple rather than a frozen dataclass: just as immutable, several times cheaper to
    build, and one is built per cell per window close.
    """

    total: float = 0.0
    weight: float = 0.0
    windows: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.weight if self.weight > 0 else None

    def skip_zero_windows(self, n: int, smoothing: float) -> EwmaState:
        """Fold in ``n`` windows that had no events, in O(1) (lazy decay for idle cells)."""
        if n <= 0:
            return self
        decay = (1.0 - smoothing) ** n
        # weight follows w <- (1-a)w + a, whose n-step closed form is 1 - decay*(1 - w).
        return EwmaState(self.total * decay, 1.0 - decay * (1.0 - self.weight), self.windows + n)

    def fold(self, skipped: int, observation: float, smoothing: float) -> EwmaState:
        """``skip_zero_windows(skipped)`` then ``update(observation)`` in one allocation.

        The detector does this once per cell per window close, so it is the hot path.
        """
        keep = 1.0 - smoothing
        decay = keep ** skipped if skipped > 0 else 1.0
        return EwmaState(
            total=self.total * decay * keep + smoothing * observation,
            weight=(1.0 - decay * (1.0 - self.weight)) * keep + smoothing,
            windows=self.windows + max(skipped, 0) + 1,
        )

    def update(self, observation: float, smoothing: float) -> EwmaState:
        return EwmaState(
            total=ewma_update(self.total, observation, smoothing),
            weight=ewma_update(self.weight, 1.0, smoothing),
            windows=self.windows + 1,
        )
