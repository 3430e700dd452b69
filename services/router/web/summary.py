"""What the group page and the tasking pack show for a period: per-ward counts against the previous
period of the same length, with significance; a baseline where one exists; categories, feeds,
trends and the records behind a ward. Pure: records in, JSON-ready dicts out.

Counts are by event time (when the incident happened, as released), the basis tasking works on.
A record the risk gate placed only at the district (no ward code) is counted apart, as
``district_only``, so the page can say how many it cannot place rather than pretend they are not
there.

Significance of a change: with ``c`` this period and ``p`` the previous one, under "the rate did
not change" ``c`` is Binomial(c + p, 1/2) (the conditional test for two Poisson counts over equal
times). The p-value is one-sided in the direction of the change; a change is called significant
below ``ALPHA``. With small counts nothing is significant, which is the honest answer.

Baseline: the mean count per period over the ``BASELINE_PERIODS`` periods before this one, only
when the group's deliveries reach back over all of them (otherwise the ward has "no baseline
yet" and is coloured by its count alone). Bands as the detector's page map (``tally.band_of``).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from schemas.feeds import EVENT_TIME_FIELDS
from schemas.shared import SharedRecord
from services.router.web.records import as_utc, record_time
from services.router.web.tally import band_of

ALPHA = 0.05
BASELINE_PERIODS = 4
#: Fields that place or time a record; the rest of a record's released fields (tags, bands, text)
#: are what the records list shows as "released".
PLACE_TIME_FIELDS = frozenset({"location", "occurred_at", "reported_at", "assault_at",
                               "arrival_at", "category"})


def public_count(count: int, suppress_below: int) -> str:
    """The protocol's small-count rule: 1 .. N-1 are shown as "<N"."""
    return f"<{suppress_below}" if 0 < count < suppress_below else str(count)


def change_shown(current: int, previous: int, suppress_below: int) -> str:
    """The change as printed: blank when either count is a small one, since "<10, 0, +7" would
    give the hidden count back."""
    small = any(0 < n < suppress_below for n in (current, previous))
    return "" if small else f"{current - previous:+d}"


def significance_shown(sig: Mapping[str, Any], small: bool) -> str:
    """The significance as printed; no p-value beside small counts (it narrows them down)."""
    if small:
        return "small counts"
    if sig["direction"] == "none":
        return "no change"
    return f'{"significant " if sig["significant"] else ""}{sig["direction"]} (p={sig["p_value"]})'


def change_p_value(current: int, previous: int) -> float:
    """One-sided p-value of the change from ``previous`` to ``current`` (equal periods)."""
    n = current + previous
    if n == 0 or current == previous:
        return 1.0
    k = max(current, previous)  # P(X >= k), X ~ Bin(n, 1/2); symmetric for a fall
    if n <= 1000:
        return min(1.0, sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0 ** n)
    z = (k - 0.5 - n / 2) / math.sqrt(n / 4)
    return 0.5 * math.erfc(z / math.sqrt(2))


def significance(current: int, previous: int) -> dict[str, Any]:
    p = change_p_value(current, previous)
    direction = "rise" if current > previous else "fall" if current < previous else "none"
    return {"p_value": round(p, 4), "direction": direction, "significant": p < ALPHA}


def _in(t: datetime | None, start: datetime, end: datetime) -> bool:
    return t is not None and start <= t < end


def filtered(records: Iterable[SharedRecord], *, category: str | None = None,
             feed: str | None = None) -> list[SharedRecord]:
    return [r for r in records if (not category or r.category == category)
            and (not feed or r.feed == feed)]


def bucket_size(start: datetime, end: datetime) -> timedelta:
    """Days for periods up to five weeks, weeks beyond."""
    return timedelta(days=1) if end - start <= timedelta(days=35) else timedelta(days=7)


def summarise(records: Sequence[SharedRecord], wards: Mapping[str, str], start: datetime,
              end: datetime, *, suppress_below: int, category: str | None = None,
              feed: str | None = None) -> dict[str, Any]:
    """The page's document for [start, end). ``wards`` maps the group's ward codes to names."""
    start, end = as_utc(start), as_utc(end)
    length = end - start
    prev_start = start - length
    base_start = start - BASELINE_PERIODS * length
    every = list(records)
    chosen = filtered(every, category=category, feed=feed)
    timed = [(r, record_time(r, "event")) for r in chosen]
    first = min((t for _, t in timed if t is not None), default=None)
    has_baseline = first is not None and first <= base_start

    now_c: Counter[str] = Counter()
    prev_c: Counter[str] = Counter()
    base_c: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    feeds: Counter[str] = Counter()
    district_only = 0
    for r, t in timed:
        ward = r.ward_code or ""
        if _in(t, start, end):
            if not r.ward_code:
                district_only += 1
            now_c[ward] += 1
            cats[r.category] += 1
            feeds[r.feed] += 1
        elif _in(t, prev_start, start):
            prev_c[ward] += 1
        if _in(t, base_start, start):
            base_c[ward] += 1

    rows = []
    for code, name in sorted(wards.items(), key=lambda kv: kv[1]):
        c, p = now_c.get(code, 0), prev_c.get(code, 0)
        expected = base_c.get(code, 0) / BASELINE_PERIODS if has_baseline else None
        rows.append({
            "ward_code": code, "ward_name": name, "count": c,
            "count_shown": public_count(c, suppress_below), "previous": p,
            "previous_shown": public_count(p, suppress_below), "change": c - p,
            "change_shown": change_shown(c, p, suppress_below),
            "expected": None if expected is None else round(expected, 2),
            "band": band_of(c, expected), **significance(c, p)})
    rows.sort(key=lambda w: (-w["count"], w["ward_name"]))
    all_cats = Counter(r.category for r in every)
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "previous_from": prev_start.isoformat(),
        "category": category, "feed": feed, "suppress_below": suppress_below,
        "total": sum(now_c.values()), "previous_total": sum(prev_c.values()),
        "total_shown": public_count(sum(now_c.values()), suppress_below),
        "previous_total_shown": public_count(sum(prev_c.values()), suppress_below),
        "district_only": district_only,
        "district_only_shown": public_count(district_only, suppress_below),
        "has_baseline": has_baseline, "wards": rows,
        "categories": sorted(all_cats), "feeds": sorted({r.feed for r in every}),
        "category_counts": dict(cats.most_common()), "feed_counts": dict(feeds.most_common()),
    }


def trend(records: Sequence[SharedRecord], start: datetime, end: datetime, *,
          ward: str | None = None, feed: str | None = None,
          periods: int = BASELINE_PERIODS) -> dict[str, Any]:
    """Counts per bucket and category over this period and the ``periods - 1`` before it, for
    one ward (or all the group's records): the page's trend chart and the pack's table."""
    start, end = as_utc(start), as_utc(end)
    step = bucket_size(start, end)
    first = start - (periods - 1) * (end - start)
    n = max(1, math.ceil((end - first) / step))
    series: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    for r in filtered(records, feed=feed):
        if ward is not None and (r.ward_code or "") != ward:
            continue
        t = record_time(r, "event")
        if _in(t, first, end):
            assert t is not None
            series[r.category][int((t - first) / step)] += 1
    buckets = [(first + i * step).isoformat() for i in range(n)]
    return {"ward": ward, "bucket": "day" if step == timedelta(days=1) else "week",
            "buckets": buckets, "period_start_index": int((start - first) / step),
            "series": dict(sorted(series.items(), key=lambda kv: -sum(kv[1])))}


def released_text(rec: SharedRecord) -> str:
    """The record's released tags, bands and text, one line: what the list shows beside its
    time bucket and category."""
    parts = []
    for name in sorted(rec.fields):
        if name in PLACE_TIME_FIELDS:
            continue
        value = rec.fields[name]
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
        parts.append(f"{name}: {value}")
    return "; ".join(parts)


def ward_records(records: Sequence[SharedRecord], start: datetime, end: datetime, *,
                 ward: str | None, category: str | None = None, feed: str | None = None,
                 limit: int = 500, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The depersonalised records behind a ward (``ward=""``: those placed only at the
    district), newest first, as the page lists them."""
    start, end = as_utc(start), as_utc(end)
    rows = []
    for r in filtered(records, category=category, feed=feed):
        t = record_time(r, "event")
        if not _in(t, start, end) or (ward is not None and (r.ward_code or "") != ward):
            continue
        assert t is not None
        rows.append({"hub_record_id": r.hub_record_id, "time": t.isoformat(),
                     "time_bucket": _coarser(r.fields.get("time_precision"), _bucket_of(r)),
                     "category": r.category, "feed": r.feed,
                     "area": r.ward_name or (names or {}).get(r.ward_code or "") or r.ward_code or
                     f"{r.district_name or r.district_code or 'unknown'} (district only)",
                     "released": released_text(r), "protocol": r.protocol})
    rows.sort(key=lambda x: x["time"], reverse=True)
    return {"ward": ward, "total": len(rows), "records": rows[:limit],
            "truncated": len(rows) > limit}


_FINENESS = ("minute", "hour", "day", "week", "month")


def _coarser(stated: Any, released: str) -> str:
    """The partner's ``time_precision`` says how precise its source was; the protocol may have
    released the time coarser still (an hour, say): the list shows whichever is coarser."""
    if stated in _FINENESS and released in _FINENESS:
        return max(stated, released, key=_FINENESS.index)
    return released if released != "unknown" else str(stated or "unknown")


def _bucket_of(rec: SharedRecord) -> str:
    """How finely the record's time was released: hour, day, week or month, from its shape."""
    for name in EVENT_TIME_FIELDS.get(rec.feed, ()):
        v = rec.fields.get(name)
        if isinstance(v, str):
            if len(v) == 7:
                return "month"
            if len(v) == 10:
                return "day"
            return "hour" if ":00:00" in v else "minute"
    return "unknown"
