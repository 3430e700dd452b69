"""What the hot-spot engine is fed (:class:`Event`) and how it is tuned (:class:`EngineConfig`).

Every default is explained in :mod:`.engine`'s docstring or notes/issue-17.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from services.core.config.errors import ConfigError

from .detector import WINDOW_KINDS, WindowKind
from .timeline import LENGTH

#: The issue's floor for the default; a protocol may set its own (protocol ``allowed_lateness_
#: hours``), within MAX_LATENESS.
DEFAULT_LATENESS = timedelta(hours=48)
#: Windows are held open this long at most: it bounds the engine's state (a week window held a
#: week past its end holds two weeks of counts) and how long a partner may take to upload.
MAX_LATENESS = timedelta(days=7)


class Event(NamedTuple):
    ward: str
    #: "protocol id|category" in the router; the part before "|" names the protocol whose
    #: allowed lateness applies.
    category: str
    feed: str
    when: datetime
    kinds: tuple[str, ...] = WINDOW_KINDS
    protocol: str | None = None
    #: The partner that sent it: each partner's feed keeps its own watermark, so one partner's
    #: fast clock cannot make another partner's records late. None: one source per feed.
    partner: str | None = None

    @property
    def source(self) -> str:
        return self.feed if self.partner is None else f"{self.partner}/{self.feed}"


def protocol_of(category: str) -> str:
    return category.split("|", 1)[0]


def check_lateness(value: timedelta, field_name: str) -> timedelta:
    if not timedelta(0) <= value <= MAX_LATENESS:
        raise ConfigError(f"must be between 0 and {MAX_LATENESS.days} days, got {value}",
                          field=field_name)
    return value


@dataclass(frozen=True, slots=True)
class EngineConfig:
    kinds: tuple[WindowKind, ...] = WINDOW_KINDS
    alpha: float = 0.01
    min_count: int = 3
    history_weeks: int = 26
    warmup_weeks: int = 6
    trend_min_weeks: int = 20
    #: |z| a trend needs before it is extrapolated (a spurious one predicts a false low).
    trend_z: float = 3.0
    allowed_lateness: timedelta = DEFAULT_LATENESS
    #: Per-protocol override of allowed_lateness (protocol id -> lateness, from the protocols).
    lateness: Mapping[str, timedelta] = field(default_factory=dict)
    grace: timedelta = timedelta(hours=2)
    future_bound: timedelta = timedelta(minutes=15)
    max_future: timedelta = timedelta(days=1)
    silent_after: timedelta = timedelta(hours=48)
    #: Longest run of recent weeks whose sum is tested per cell (closes.WindowTests._week_runs).
    evidence_weeks: int = 4
    #: Factor on alpha in the week tests (cell, run, scan): the simulated and real counts are
    #: mixtures of a week's and a day's random level, heavier-tailed than one NB of the same
    #: variance (the day windows' short_tail is the same allowance).
    week_tail: float = 1.0
    #: Week tests (cell runs, CUSUM confirmation, re-tests) and the scan's Monte Carlo null use
    #: the two-level predictive (nb.two_level_upper_p_array: the NB's mean and variance, a week
    #: level times a short-term level, a heavier far tail). False: one NB (i17-hot2's model).
    two_level_tail: bool = True
    #: Scan score: the NB log-likelihood ratio of a zone's sum (True) or the quasi-Poisson
    #: ratio (False, i17-hot2's score). See scan.py.
    scan_nb_score: bool = True
    #: A CUSUM alarm is raised only if the run it covers is unusual as a whole (NB p <= this).
    cusum_confirm_p: float = 0.05
    #: Runs of weeks and scan windows are tested against the prediction made before they began
    #: (False: each week against its own prediction, which the run's earlier weeks raised).
    frozen_baseline: bool = True
    cusum_ratio: float = 2.0
    cusum_threshold: float = 7.5
    #: Factor on the estimated alpha of hour and day windows (see closes.close_short).
    short_tail: float = 2.0
    #: Hour and day windows use the two-level tail too (as the week tests do).
    short_two_level: bool = True
    #: A ward's burst is raised once a week by the short windows: after an hour or day alert,
    #: no further hour or day alert that week (the week's own test still runs; False: every
    #: window alerts on its own).
    one_burst_alert: bool = True
    shift_confirm_p: float = 0.05
    scan_weeks: int = 3
    #: Scan zones: a ward with every set of up to this many of its neighbours (and with all).
    scan_neighbours: int = 2
    scan_replicates: int = 399
    scan_level: float = 0.01
    #: Weight of the category's pooled dispersion, in weeks of a cell's own counts.
    pool_weeks: float = 20.0
    #: Decay per week close of the hour-of-week profile and the day/hour dispersion sums.
    profile_decay: float = 0.9

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"must be in (0, 1), got {self.alpha}", field="alpha")
        check_lateness(self.allowed_lateness, "allowed_lateness")
        for protocol, value in self.lateness.items():
            check_lateness(value, f"lateness.{protocol}")
        if self.warmup_weeks < 3 or self.history_weeks < self.warmup_weeks:
            raise ConfigError("need 3 <= warmup_weeks <= history_weeks", field="warmup_weeks")
        if not self.kinds or any(k not in LENGTH for k in self.kinds):
            raise ConfigError(f"must be a non-empty subset of {WINDOW_KINDS}", field="kinds")

    def lateness_of(self, category: str) -> int:
        """Allowed lateness in seconds for a category (its protocol's, else the default)."""
        return int(self.lateness.get(protocol_of(category),
                                     self.allowed_lateness).total_seconds())


__all__ = ["DEFAULT_LATENESS", "MAX_LATENESS", "EngineConfig", "Event", "check_lateness",
           "protocol_of"]
