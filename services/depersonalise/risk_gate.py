"""A streaming k-anonymity gate on released records, and small-count suppression for aggregates.

What the gate does
------------------
Each released record has a *combination* of quasi-identifier (QI) values, e.g. (ward, victim age
band, suspect age band). The gate counts, over a sliding window (default 7 days), how many records
it has seen with each combination, the current one included, at every level of generalisation,
and releases the finest level whose combination has been seen at least ``k`` times:

* ``release`` - the exact combination has been seen at least ``k`` times;
* ``generalise`` - it has not, but a coarser level has: that level's values are released;
* ``suppress`` - no level reaches ``k``: every QI is withheld down to its floor (local
  suppression). The only floor is the district (see below), so the record goes out with its
  district and its non-QI fields, and nothing finer.

Levels follow the protocol's order of ``quasi_identifiers``: **listed most-needed first**, so the
*last* QI is coarsened first, rung by rung, until it is gone, then the one before it, and so on.
The police protocol lists ``[location, victim_dob, suspect_dob]``: ages are widened and withheld
before the ward is given up, because the ward is what hot-spot tasking needs.

Ladders (one rung per level):

* time: hour -> day -> week -> month -> withheld
* location: point (grid / snap / ward centre) -> ward -> district, which is the floor: a record
  delivered to a district group's topic discloses its district whatever its fields say, so the
  gate cannot withhold it and does not pretend to (without the record's area it is withheld)
* age band: any band -> the wide band holding it (0-17, 18-64, 65+) -> withheld; a band that
  straddles two wide bands is withheld
* anything else: withheld

What it does not do (the honest trade-off)
------------------------------------------
A stream cannot know future counts. The first ``k - 1`` records of any combination are therefore
always generalised or suppressed, and only the ``k``-th and later are released exactly. The
guarantee is a *population* threshold: when a record is released at some level, at least ``k``
records in the window, as seen by the hub, share its released combination. It is not classical
k-anonymity of the recipients' table (earlier records of the same combination reached them
generalised). Records outside the window are forgotten, so a combination that is rare over a year
but clustered in one week is released. Counts include suppressed records, because the risk is
about how many people share the combination, not how many the recipient happens to have seen.

A record seen again (same ``record_id``: a redelivery after a crash) gets its first decision back
and is not counted twice, so replays cannot push a rare combination over ``k``.

Bounds: counts are kept in time buckets (1/168 of the window: an hour for 7 days). A bucket is
forgotten as soon as any part of it falls outside the window, and when more than ``max_keys``
(bucket, level, combination) counts are held the oldest buckets are forgotten early. Both only
ever lower counts, so under memory pressure the gate becomes stricter, never looser. The state is
in memory: a restarted service starts from zero counts, which is also the stricter direction.

Over 400 lines because the counting window, the generalisation ladder and suppression are one
algorithm whose invariants (k over a window, floors) must be read together.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.core.crypto.canonical import canonical_bytes
from services.protocols.protocol import Protocol
from services.protocols.transforms import DROP, AreaInfo

Action = Literal["release", "generalise", "suppress", "hold"]
#: One rung up a ladder: (released value, the record's area) -> coarser value, or DROP.
Step = Callable[[Any, AreaInfo | None], Any]

_BUCKETS_PER_WINDOW = 168
#: ``_decided`` marker: counted once, held, no final decision yet.
_HELD = -2
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
    #: What may be released: the input for "release", the coarser copy for "generalise", the
    #: floor (every QI withheld but the district) for "suppress".
    fields: dict[str, Any]
    #: QIs changed or withheld. If the location QI is here, the caller must attach no area finer
    #: than what ``fields`` still shows.
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
    step.period = period  # type: ignore[attr-defined]  # read by chain_of
    return step


_PERIODS = ("hour", "day", "week", "month")
# Built once: chain_of runs for every QI of every record.
_PERIOD_STEPS = {p: _step_from_period(p) for p in _PERIODS}


def chain_of(step: Step, value: Any, area: AreaInfo | None) -> list[Any]:
    """Every rung above ``value``, coarsest last: ends with DROP, or stops at a floor.

    Time is walked period by period (hour, day, week, month) because a day and a week look
    alike: stepping a week "up" by its shape alone would stop at its own Monday.
    """
    period = getattr(step, "period", None)
    if period is None and step is guess_step and isinstance(value, str):
        period = "hour" if _HOUR.match(value) else "day" if _DAY.match(value) else None
    out: list[Any] = []
    if period in _PERIODS:
        current = value
        for p in _PERIODS[_PERIODS.index(period):]:
            current = _PERIOD_STEPS[p](current, area)
            out.append(current)
            if current is DROP:
                break
        return out
    current = value
    for _ in range(8):  # real ladders are shorter; the bound stops a step that never settles
        new = step(current, area)
        if new is DROP or new is None:
            out.append(DROP)
            break
        if new == current:
            break  # the floor
        out.append(new)
        current = new
    return out


def location_step(value: Any, area: AreaInfo | None) -> Any:
    """Point -> ward -> district, using the record's own area. The district is the floor (it is
    returned unchanged): delivery to a district group discloses it anyway."""
    if area is None:
        return DROP
    if isinstance(value, Mapping):  # a point: grid, snap or ward centre
        return area.ward_code or area.district_code or area.district_name or DROP
    if value is not None and value == area.ward_code:
        return area.district_code or area.district_name or DROP
    if value is not None and value in (area.district_code, area.district_name):
        return value
    if isinstance(value, str) and _WARD_CODE.match(value):
        # A ward code that is not this record's ward: trust the area no further than its district.
        return area.district_code or DROP
    return DROP  # unrecognised: nothing to stand on


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

_JSON_KEY = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> bool:
    """True for values whose JSON text no other value shares: None, a string, or a flat mapping
    of string keys to strings and finite floats (a released point). Mappings with other keys are
    left to the canonical encoder: JSON would write the keys 1 and "1" alike, merging counts."""
    if value is None or type(value) is str:
        return True
    if type(value) is dict:
        return all(type(k) is str and (type(v) is str or (type(v) is float and math.isfinite(v)))
                   for k, v in value.items())
    return False


Level = tuple[dict[str, Any], tuple[str, ...]]


class RiskGate:
    def __init__(self, k: int, quasi_identifiers: Sequence[str], *,
                 window: timedelta = timedelta(days=7), max_keys: int = 200_000,
                 steps: Mapping[str, Step] | None = None,
                 hold: timedelta = timedelta(0)) -> None:
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
        if hold < timedelta(0):
            raise ValueError("hold must not be negative")
        self.hold = hold
        # The area QIs are coarsened last whatever their place in the list: the ward is what
        # tasking needs, so ages, property types and times are widened and withheld first.
        area = [qi for qi in self.quasi_identifiers if self._steps.get(qi) is location_step]
        self._order = tuple(area) + tuple(
            qi for qi in self.quasi_identifiers if qi not in area)
        self._area_qis = frozenset(area)
        self._width = window.total_seconds() / _BUCKETS_PER_WINDOW
        self._buckets: dict[int, Counter[bytes]] = {}
        self._totals: Counter[bytes] = Counter()
        self._size = 0
        self._high_water: int | None = None
        # Only the level a record was decided at and its count, not the fields: a decision is
        # recomputed from the record on a repeat. ~120 bytes an id instead of ~1 kB, which is
        # what kept depersonalise's memory growing in the soak.
        self._decided: OrderedDict[str, tuple[int, int]] = OrderedDict()

    @classmethod
    def for_protocol(cls, protocol: Protocol, feed: str, **kw: Any) -> RiskGate:
        if protocol.hold_hours and "hold" not in kw:
            kw["hold"] = timedelta(hours=protocol.hold_hours)
        return cls(protocol.k, protocol.quasi_identifiers, steps=ladder_for(protocol, feed), **kw)

    @property
    def bucket_width(self) -> timedelta:
        """How finely counts are kept in time: a count leaves the window up to this early."""
        return timedelta(seconds=self._width)

    @property
    def held_keys(self) -> int:
        """(bucket, level, combination) counts currently held; never above ``max_keys``."""
        return self._size

    def check(self, released_fields: Mapping[str, Any], at: datetime,
              area: AreaInfo | None = None, record_id: str | None = None) -> Decision:
        """Decide on one record's released fields.

        ``at`` places the record in the window: the hub passes the processing time (what was
        released recently), so a replayed backlog is counted together and a wrongly future-dated
        record cannot push the window ahead. Use one gate per (protocol version, feed) so
        unrelated streams do not vouch for each other. ``area`` is the record's ward and
        district, needed to move a location up its ladder. ``record_id``, when given, makes the
        decision idempotent: the same id gets the same decision and is counted once.
        """
        if record_id is not None and (seen := self._decided.get(record_id)) is not None:
            self._decided.move_to_end(record_id)
            if seen[0] == _HELD:
                return self.recheck(released_fields, area, record_id=record_id, at=at)
            return self._at_level(released_fields, area, *seen)
        decision, level = self._decide(released_fields, at, area)
        self._remember(record_id, level, decision.count)
        return decision

    def recheck(self, released_fields: Mapping[str, Any], area: AreaInfo | None, *,
                expired: bool = False, record_id: str | None = None,
                at: datetime | None = None) -> Decision:
        """Decide again on a held record, from the counts as they are now, without counting it
        a second time (it was counted when first checked).

        ``at``: the time now. The window is moved up to it first, so records that have left it
        since the last record was counted no longer count (without it, a recheck long after the
        last record, as when a hold ends on a quiet feed, would count them).

        While its hold lasts, the record is released only at a level that keeps its ward;
        otherwise it stays held. Once ``expired``, it gets what the counts allow now, which may
        be the district. The decision then stands for ``record_id``.
        """
        if at is not None:
            self._advance(self._bucket_of(at))
        levels = self.levels(released_fields, area)
        counts = [max(self._totals[self._key(f)], 1) for f, _ in levels]
        decision, level = self._first_passing(released_fields, levels, counts, area,
                                              may_hold=not expired)
        self._remember(record_id, level, decision.count)
        return decision

    def _remember(self, record_id: str | None, level: int, count: int) -> None:
        if record_id is None:
            return
        self._decided[record_id] = (level, count)
        self._decided.move_to_end(record_id)
        while len(self._decided) > self.max_keys:
            self._decided.popitem(last=False)

    def keeps_ward(self, fields: Mapping[str, Any], area: AreaInfo | None) -> bool:
        """True when ``fields`` still place the record in its ward (or finer)."""
        if not self._area_qis or area is None or area.ward_code is None:
            return False
        for qi in self._area_qis:
            value = fields.get(qi)
            if not (isinstance(value, Mapping) or value == area.ward_code):
                return False
        return True

    def _at_level(self, released_fields: Mapping[str, Any], area: AreaInfo | None,
                  level: int, count: int) -> Decision:
        if level == 0:
            return Decision("release", dict(released_fields), count=count)
        levels = self.levels(released_fields, area)
        fields, changed = levels[min(level, len(levels) - 1)] if level > 0 else levels[-1]
        return Decision("generalise" if level > 0 else "suppress", fields, changed, count=count)

    def _decide(self, released_fields: Mapping[str, Any], at: datetime,
                area: AreaInfo | None) -> tuple[Decision, int]:
        """The decision and the level it was taken at: 0 exact, i > 0 the i-th coarser level,
        -1 suppressed."""
        if not self.quasi_identifiers:
            return Decision("release", dict(released_fields), count=1), 0
        levels = self.levels(released_fields, area)
        keys = [self._key(fields) for fields, _ in levels]
        # Once per distinct combination: two levels of one record can show the same values.
        self._count(self._bucket_of(at), list(dict.fromkeys(keys)))
        # A record older than the window (or forgotten under memory pressure) is not held; it
        # still counts once, for itself.
        counts = [max(self._totals[key], 1) for key in keys]
        return self._first_passing(released_fields, levels, counts, area,
                                   may_hold=self.hold > timedelta(0))

    def _first_passing(self, released_fields: Mapping[str, Any], levels: list[Level],
                       counts: list[int], area: AreaInfo | None, *,
                       may_hold: bool) -> tuple[Decision, int]:
        """The finest level reaching k; or, when ``may_hold`` and that level would lose the
        record's ward, a hold (level ``_HELD``) so the ward cell can fill."""
        ward_levels = ([i for i, (f, _) in enumerate(levels) if self.keeps_ward(f, area)]
                       if may_hold else [])
        for i, ((fields, changed), n) in enumerate(zip(levels, counts, strict=True)):
            if n >= self.k:
                if ward_levels and i > ward_levels[-1]:
                    break
                if i == 0:
                    return Decision("release", dict(released_fields), count=n), 0
                return Decision("generalise", fields, changed, count=n), i
        if ward_levels:
            w = ward_levels[-1]
            return Decision("hold", levels[w][0], levels[w][1], count=counts[w]), _HELD
        floor, changed = levels[-1]
        return Decision("suppress", floor, changed, count=counts[-1]), -1

    def levels(self, fields: Mapping[str, Any], area: AreaInfo | None) -> list[Level]:
        """Every level from exact to floor: (fields at that level, QIs changed so far)."""
        current = dict(fields)
        changed: list[str] = []
        out: list[Level] = [(current, ())]
        for qi in reversed(self._order):
            if current.get(qi) is None:
                continue
            for new in chain_of(self._steps.get(qi, guess_step), current[qi], area):
                if new is DROP:
                    current = {k: v for k, v in current.items() if k != qi}
                elif new == current.get(qi):
                    continue  # e.g. a Monday's week is itself: no new level
                else:
                    current = {**current, qi: new}
                if qi not in changed:
                    changed.append(qi)
                out.append((current, tuple(changed)))
        return out

    def _key(self, fields: Mapping[str, Any]) -> bytes:
        # Absent and withheld are the same to a recipient, so both count as null. The key is
        # the combination as a recipient sees it, not the level it was reached at: a record
        # whose age band was withheld in one step (a band straddling two wide bands) and one
        # whose band was widened first both show (ward, -, -) and must count together. Keying
        # by level as well split those counts and sent most police records to the district.
        values = [fields.get(qi) for qi in self.quasi_identifiers]
        if all(_plain(v) for v in values):
            # The usual QI values (strings, a point) through the C JSON encoder: several keys per
            # record made the pure-Python canonical encoder a tenth of the engine's time. The
            # keys never leave this process, so only equality matters, and the prefixes keep the
            # three encodings apart.
            # surrogatepass: a lone surrogate must still count, not crash the stage.
            return b"j" + _JSON_KEY.encode(values).encode("utf-8", "surrogatepass")
        try:
            return b"c" + canonical_bytes(values)
        except (TypeError, ValueError):
            return b"r" + repr(values).encode()  # e.g. a naive datetime kept as is

    def _bucket_of(self, at: datetime) -> int:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)  # deterministic, whatever the machine's zone
        return math.floor(at.timestamp() / self._width)

    def _advance(self, index: int) -> None:
        if self._high_water is None or index > self._high_water:
            self._high_water = index
            self._expire()

    def _count(self, index: int, keys: Sequence[bytes]) -> None:
        self._advance(index)
        if index < self._oldest_kept():
            return
        bucket = self._buckets.setdefault(index, Counter())
        before = len(bucket)
        for key in keys:
            bucket[key] += 1
            self._totals[key] += 1
        self._size += len(bucket) - before
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
        self._totals.subtract(bucket)
        for key in bucket:
            if self._totals[key] <= 0:
                del self._totals[key]
        self._size -= len(bucket)


def suppress_count(count: int, threshold: int) -> str:
    """A published aggregate: the count, or ``<threshold`` when it is small enough to identify.

    Zero is suppressed too: "none in this ward" can be as telling as "one".
    """
    if count < 0:
        raise ValueError("a count cannot be negative")
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    return f"<{threshold}" if count < threshold else str(count)
