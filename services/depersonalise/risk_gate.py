"""A streaming k-anonymity gate on released records, and small-count suppression for aggregates.

What the gate does
------------------
Each released record has a *combination* of quasi-identifier (QI) values, e.g. (hour, ward, age
band). The gate counts, over a sliding window (default 7 days), how many records it has seen with
each combination, the current one included, and decides:

* ``release`` - the exact combination has been seen at least ``k`` times;
* ``generalise`` - it has not, but the combination one step coarser (every QI moved one rung up
  its ladder, below) has: the coarser values are released instead;
* ``suppress`` - even the coarser combination is rarer than ``k``: nothing is released.

Ladders (one rung per check; a QI with no rung left is dropped from the record):

* time: hour -> day -> week -> month -> dropped
* location: point (grid / snap / ward centre) -> ward -> district -> dropped
  (moving up needs the record's ward and district, passed to :meth:`RiskGate.check` as ``area``;
  without it the location is dropped)
* age band: any band -> the wide band holding it (0-17, 18-64, 65+) -> dropped; a band that
  straddles two wide bands is dropped
* anything else: dropped

What it does not do (the honest trade-off)
------------------------------------------
A stream cannot know future counts. The first ``k - 1`` records of any combination are therefore
always generalised or suppressed, and only the ``k``-th and later are released exactly. The
guarantee is a *population* threshold: when a record is released, at least ``k`` records in the
window, as seen by the hub, share its released combination. It is not classical k-anonymity of the
recipients' table (earlier records of the same combination reached them generalised, or not at
all). Records outside the window are forgotten, so a combination that is rare over a year but
clustered in one week is released. Counts include suppressed records, because the risk is about how
many people share the combination, not how many the recipient happens to have seen.

Bounds: counts are kept in time buckets (1/168 of the window: an hour for 7 days). A bucket is
forgotten as soon as any part of it falls outside the window, and when more than ``max_keys``
(bucket, combination) counts are held the oldest buckets are forgotten early. Both only ever lower
counts, so under memory pressure the gate becomes stricter, never looser.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.core.canonical import canonical_bytes
from services.depersonalise.protocol import Protocol
from services.depersonalise.transforms import DROP, AreaInfo

Action = Literal["release", "generalise", "suppress"]
#: One rung up a ladder: (released value, the record's area) -> coarser value, or DROP.
Step = Callable[[Any, AreaInfo | None], Any]

_BUCKETS_PER_WINDOW = 168
_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2})T\d{2}:00:00Z$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_BAND = re.compile(r"^(\d+)(?:-(\d+)|\+)?$")
_WARD_CODE = re.compile(r"^[EWSN]05\d{6}$")
WIDE_BANDS: tuple[tuple[int, int | None, str], ...] = (
    (0, 17, "0-17"), (18, 64, "18-64"), (65, None, "65+"))


@dataclass(frozen=True)
class Decision:
    action: Action
    #: What may be released: the input for "release", the coarser copy for "generalise", {} for
    #: "suppress".
    fields: dict[str, Any]
    #: QIs changed or dropped by "generalise". If the location QI is here, the caller must not
    #: attach ward codes to the shared record.
    generalised: tuple[str, ...] = ()
    #: How many records in the window share the combination that decided the action.
    count: int = 0


# --- ladders ------------------------------------------------------------------------------------


def _week_of(day: str) -> str:
    d = datetime.strptime(day, "%Y-%m-%d").date()
    return (d - timedelta(days=d.weekday())).isoformat()


def time_step(value: Any, area: AreaInfo | None = None) -> Any:
    """hour -> day -> week -> month -> DROP, on the ``time`` transform's output strings.

    A day and a week look alike (a week is its Monday); taking a week "up" to its own Monday is
    a no-op, so a protocol releasing weeks should use :func:`ladder_for`, which knows the period.
    """
    if isinstance(value, str):
        if m := _HOUR.match(value):
            return m.group(1)
        if _DAY.match(value):
            return _week_of(value)
    return DROP


def _step_from_period(period: str) -> Step:
    def step(value: Any, area: AreaInfo | None = None) -> Any:
        if not isinstance(value, str):
            return DROP
        if period == "hour":
            return time_step(value)
        if period == "day" and _DAY.match(value):
            return _week_of(value)
        if period == "week" and _DAY.match(value):
            return value[:7]  # the month of the week's Monday
        return DROP
    return step


def location_step(value: Any, area: AreaInfo | None) -> Any:
    """Point -> ward -> district -> DROP, using the record's own area."""
    if area is None:
        return DROP
    if isinstance(value, Mapping):  # a point: grid, snap or ward centre
        return area.ward_code or area.district_code or DROP
    if value is not None and value == area.ward_code:
        return area.district_code or area.district_name or DROP
    if isinstance(value, str) and _WARD_CODE.match(value):
        # A ward code that is not this record's ward: trust the area no further than its district.
        return area.district_code or DROP
    return DROP  # a district (or anything unrecognised) has no rung left below the county


def age_band_step(value: Any, area: AreaInfo | None = None) -> Any:
    if not isinstance(value, str) or not (m := _BAND.match(value)):
        return DROP
    low = int(m.group(1))
    high = int(m.group(2)) if m.group(2) else (None if value.endswith("+") else low)
    for w_low, w_high, label in WIDE_BANDS:
        inside_low = low >= w_low and (w_high is None or low <= w_high)
        inside_high = (high is None and w_high is None) or (
            high is not None and high >= w_low and (w_high is None or high <= w_high))
        if inside_low and inside_high:
            return DROP if value == label else label
    return DROP


def guess_step(value: Any, area: AreaInfo | None) -> Any:
    """The ladder inferred from the value's shape, for QIs without a protocol rule to go by."""
    if isinstance(value, str):
        if _HOUR.match(value) or _DAY.match(value):
            return time_step(value)
        if _MONTH.match(value):
            return DROP
        if _BAND.match(value):
            return age_band_step(value)
        return location_step(value, area)
    if isinstance(value, Mapping):
        return location_step(value, area)
    return DROP


def ladder_for(protocol: Protocol, feed: str) -> dict[str, Step]:
    """One step per QI of ``protocol``, chosen from the transform that produced the QI in ``feed``.

    QIs the feed does not release get no step (their value is absent, so nothing to coarsen).
    """
    rules = protocol.feeds.get(feed)
    steps: dict[str, Step] = {}
    if rules is None:
        return steps
    for qi in protocol.quasi_identifiers:
        rule = rules.fields.get(qi)
        if rule is None:
            continue
        if rule.transform == "time":
            steps[qi] = _step_from_period(str(rule.params.get("to")))
        elif rule.transform == "location":
            steps[qi] = location_step
        elif rule.transform == "age_band":
            steps[qi] = age_band_step
        else:
            steps[qi] = guess_step
    return steps


# --- the gate -----------------------------------------------------------------------------------


@dataclass
class _Bucket:
    exact: Counter[bytes] = field(default_factory=Counter)
    coarse: Counter[bytes] = field(default_factory=Counter)

    def size(self) -> int:
        return len(self.exact) + len(self.coarse)


class RiskGate:
    def __init__(self, k: int, quasi_identifiers: Sequence[str], *,
                 window: timedelta = timedelta(days=7), max_keys: int = 200_000,
                 steps: Mapping[str, Step] | None = None) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        if window <= timedelta(0):
            raise ValueError("window must be positive")
        if max_keys < 2:
            raise ValueError("max_keys must be at least 2")
        self.k = k
        self.quasi_identifiers = tuple(quasi_identifiers)
        self.window = window
        self.max_keys = max_keys
        self._steps = dict(steps or {})
        self._width = window.total_seconds() / _BUCKETS_PER_WINDOW
        self._buckets: dict[int, _Bucket] = {}
        self._exact: Counter[bytes] = Counter()
        self._coarse: Counter[bytes] = Counter()
        self._size = 0
        self._high_water: int | None = None

    @classmethod
    def for_protocol(cls, protocol: Protocol, feed: str, **kw: Any) -> RiskGate:
        return cls(protocol.k, protocol.quasi_identifiers, steps=ladder_for(protocol, feed), **kw)

    @property
    def held_keys(self) -> int:
        """(bucket, combination) counts currently held; never above ``max_keys``."""
        return self._size

    def check(self, released_fields: Mapping[str, Any], at: datetime,
              area: AreaInfo | None = None) -> Decision:
        """Decide on one record's released fields.

        ``at`` places the record in the window. Pass the event time to count records as they
        happened (a record older than the window then counts only itself, so it is generalised
        or suppressed), or the processing time to count what was released recently; use one
        gate per (protocol, feed) so unrelated streams do not vouch for each other. ``area`` is
        the record's ward and district, needed to move a location up its ladder.
        """
        if not self.quasi_identifiers:
            return Decision("release", dict(released_fields), count=1)
        coarse_fields, changed = self._generalise(released_fields, area)
        exact_key = self._key(released_fields)
        coarse_key = self._key(coarse_fields)
        self._count(self._bucket_of(at), exact_key, coarse_key)
        n_exact, n_coarse = self._exact[exact_key], self._coarse[coarse_key]
        # A record older than the window (or forgotten under memory pressure) is not held; it
        # still counts once, for itself.
        n_exact, n_coarse = max(n_exact, 1), max(n_coarse, 1)
        if n_exact >= self.k:
            return Decision("release", dict(released_fields), count=n_exact)
        if n_coarse >= self.k:
            return Decision("generalise", coarse_fields, tuple(changed), count=n_coarse)
        return Decision("suppress", {}, count=n_coarse)

    def _generalise(self, fields: Mapping[str, Any], area: AreaInfo | None
                    ) -> tuple[dict[str, Any], list[str]]:
        out = dict(fields)
        changed: list[str] = []
        for qi in self.quasi_identifiers:
            value = fields.get(qi)
            if value is None:
                continue
            new = self._steps.get(qi, guess_step)(value, area)
            if new is DROP or new is None:
                del out[qi]
                changed.append(qi)
            elif new != value:
                out[qi] = new
                changed.append(qi)
        return out, changed

    def _key(self, fields: Mapping[str, Any]) -> bytes:
        # Absent and withheld are the same to a recipient, so both count as null.
        values = [fields.get(qi) for qi in self.quasi_identifiers]
        try:
            return canonical_bytes(values)
        except (TypeError, ValueError):
            return repr(values).encode()  # e.g. a naive datetime kept as is: still countable

    def _bucket_of(self, at: datetime) -> int:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # deterministic, whatever the machine's zone
        return math.floor(at.timestamp() / self._width)

    def _count(self, index: int, exact: bytes, coarse: bytes) -> None:
        if self._high_water is None or index > self._high_water:
            self._high_water = index
            self._expire()
        if index < self._oldest_kept():
            return
        bucket = self._buckets.setdefault(index, _Bucket())
        before = bucket.size()
        bucket.exact[exact] += 1
        bucket.coarse[coarse] += 1
        self._size += bucket.size() - before
        self._exact[exact] += 1
        self._coarse[coarse] += 1
        while self._size > self.max_keys and self._buckets:
            # Forget the oldest first. Forgetting only lowers counts, so the gate gets stricter,
            # never looser; the current record still counts once for itself (see check).
            self._forget(min(self._buckets))

    def _oldest_kept(self) -> int:
        # Keep a bucket only if it lies wholly inside the window ending at the high-water bucket.
        assert self._high_water is not None
        return self._high_water - _BUCKETS_PER_WINDOW + 1

    def _expire(self) -> None:
        for index in [i for i in self._buckets if i < self._oldest_kept()]:
            self._forget(index)

    def _forget(self, index: int) -> None:
        bucket = self._buckets.pop(index)
        self._exact.subtract(bucket.exact)
        self._coarse.subtract(bucket.coarse)
        for total, part in ((self._exact, bucket.exact), (self._coarse, bucket.coarse)):
            for key in part:
                if total[key] <= 0:
                    del total[key]
        self._size -= bucket.size()


def suppress_count(count: int, threshold: int) -> str:
    """A published aggregate: the count, or ``<threshold`` when it is small enough to identify.

    Zero is suppressed too: "none in this ward" can be as telling as "one".
    """
    if count < 0:
        raise ValueError("a count cannot be negative")
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    return f"<{threshold}" if count < threshold else str(count)
