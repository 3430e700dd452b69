"""Liveness at an instant, and the instants at which it can change.

A protocol's ``valid_from`` and ``valid_until`` are whole days, both inclusive, read in UTC like
every other date the hub judges (``datetime.now(UTC).date()``): it becomes live at 00:00 UTC on
``valid_from`` and stops at 00:00 UTC on the day after ``valid_until``. Those two instants are its
*validity boundaries*. Between boundaries only a config change (a new text, a signature, a
revocation) can change which protocols are live, so a reader that recomputes at the next boundary
and on each config change is never stale: a protocol that expires at midnight stops at midnight.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from services.protocols.protocol import Protocol


def day_of(instant: datetime) -> date:
    """The UTC day an aware instant falls on (a naive one is refused: its day is a guess)."""
    if instant.tzinfo is None:
        raise ValueError("a naive datetime has no day: give a timezone")
    return instant.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def boundaries(protocol: Protocol) -> tuple[datetime, datetime]:
    """(first live instant, first instant no longer live) of ``protocol``'s validity period."""
    return _midnight(protocol.valid_from), _midnight(protocol.valid_until + timedelta(days=1))


def next_boundary(protocols: Iterable[Protocol], after: datetime) -> datetime | None:
    """The first validity boundary of any of ``protocols`` strictly after ``after``, or None when
    no date will change what is live."""
    later = [b for p in protocols for b in boundaries(p) if b > after]
    return min(later, default=None)
