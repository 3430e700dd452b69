"""Window arithmetic of the hot-spot engine in epoch seconds (pure, no state).

Windows are tumbling UTC hours, days and weeks starting Monday 00:00 UTC (the same windows as
:func:`.detector.window_index`); the engine works in integer seconds because it indexes and
compares millions of event times and datetime arithmetic dominated its cost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

#: 1970-01-01 was a Thursday; shifting by three days makes week windows start on Mondays.
EPOCH_WEEK_SHIFT = 3 * 86400
LENGTH = {"hour": 3600, "day": 86400, "week": 7 * 86400}
HOURS_OF_WEEK = 168
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def index_of(kind: str, seconds: int) -> int:
    """The window of ``kind`` holding the instant ``seconds``."""
    if kind == "week":
        seconds += EPOCH_WEEK_SHIFT
    return seconds // LENGTH[kind]


def start_of(kind: str, index: int) -> int:
    """Epoch seconds at which window ``index`` of ``kind`` starts."""
    return index * LENGTH[kind] - (EPOCH_WEEK_SHIFT if kind == "week" else 0)


def seconds_of(moment: datetime) -> int:
    """Whole epoch seconds; a naive datetime is UTC (the hub convention)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int((moment - _EPOCH) // timedelta(seconds=1))


def hour_of_week(seconds: int) -> int:
    """0 = Monday 00:00-01:00 UTC ... 167 = Sunday 23:00-24:00."""
    return ((seconds + EPOCH_WEEK_SHIFT) // 3600) % HOURS_OF_WEEK


__all__ = ["EPOCH_WEEK_SHIFT", "HOURS_OF_WEEK", "LENGTH", "hour_of_week", "index_of",
           "seconds_of", "start_of"]
