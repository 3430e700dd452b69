"""A record's event time, read one way by every stage: depersonalise (a raw record, for ages at
the event), the router's hot-spot counting and the group page, exports and pack (released
records). The fields it reads are the one list in ``schemas/feeds.py`` (``EVENT_TIME_FIELDS``).

Pure: a feed name and a record's fields in, an aware UTC time and its precision out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from schemas.feeds import EVENT_TIME_FIELDS

#: "hour": a date-time, placeable in its hour (and so its day and week). "week": a date only:
#: the risk gate's ladder turns a day into its week's Monday, and a Monday date cannot say which
#: it is, so only its week is sure.
Precision = Literal["hour", "week"]

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: A partner's stated precision that still places a record in an hour; police.uk's "month" does
#: not (its time is the first of the month).
_WINDOWABLE = (None, "exact", "hour", "minute")


class EventTime(NamedTuple):
    when: datetime  # aware, UTC (the hub's convention: a time without an offset is UTC)
    precision: Precision


def event_time(feed: str, fields: Mapping[str, Any], *,
               counted: bool = False) -> EventTime | None:
    """When the incident happened: the first of the feed's event-time fields holding a date or
    date-time (a ``datetime`` or ISO 8601 text), or None.

    ``counted``: the time that hot-spot windows count. Only the feed's first field, so a count
    never mixes assault times with arrival times (they lag by hours), and none for a record whose
    partner states its time only to the month, which no hour, day or week window can place.
    """
    names = EVENT_TIME_FIELDS.get(feed, ())
    if counted:
        if fields.get("time_precision") not in _WINDOWABLE:
            return None
        names = names[:1]
    for name in names:
        value = fields.get(name)
        if isinstance(value, datetime):
            return EventTime(as_utc(value), "hour")
        if not isinstance(value, str) or not (_DATE_TIME.match(value) or _DATE.match(value)):
            continue
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:  # the shape is right; the calendar may still say no (a 30 February)
            continue
        return EventTime(as_utc(when), "week" if _DATE.match(value) else "hour")
    return None


def as_utc(moment: datetime) -> datetime:
    """Hub convention: a naive datetime is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
