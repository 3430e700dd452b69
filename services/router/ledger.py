"""Which records each group has already been sent, so a redelivery never reaches a group twice.
Pure."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

#: Default ids remembered per group (``Settings.router_ledger_ids_per_group``). Measured with
#: tracemalloc: ~124 bytes per id (74 for the 25-character id string, the rest set and deque
#: slots), so ~6.2 MB per group at the bound; 11 groups in Hertfordshire, ~68 MB at most.
DEFAULT_MAX_PER_GROUP = 200_000


class DeliveryLedger:
    """The ids of the last ``max_per_group`` records sent to each group (oldest forgotten first).

    What that bound covers, and what it does not:

    * the router's own uncommitted batch after a crash (at most ``batch_max_records`` records)
      and depersonalise or ingest re-emitting their uncommitted batch after a crash (the same
      order of size, re-read right after their restart): always caught while ``max_per_group``
      exceeds a few batches, which ``Settings`` enforces;
    * a raw replay (``s115hub dlq replay``, ``s115hub protocol replay``) of records a group
      already has: caught only if fewer than ``max_per_group`` records reached that group since
      the original delivery. Older ones are delivered again, under the same key (the hub record
      id) so the group can drop them, and the audit chainer still chains one disclosure per
      (group, record). With the default 200,000: up to ~28,000 deliveries a day to a group the
      window spans the whole 7-day raw retention; at the benchmark's 200 records/s into one
      group it is about 17 minutes.

    Memory is at most ``groups * max_per_group`` ids whatever the uptime, instead of one per
    delivery ever made.
    """

    def __init__(self, max_per_group: int = DEFAULT_MAX_PER_GROUP) -> None:
        if max_per_group < 1:
            raise ValueError(f"max_per_group must be at least 1, got {max_per_group}")
        self.max_per_group = max_per_group
        self._seen: dict[str, set[str]] = {}
        # Same ids as _seen, oldest first; a set alone cannot tell which id to forget.
        self._order: dict[str, deque[str]] = {}

    def _of(self, group: str) -> tuple[set[str], deque[str]]:
        seen = self._seen.get(group)
        if seen is None:
            seen = self._seen[group] = set()
            self._order[group] = deque()
        return seen, self._order[group]

    def _remember(self, seen: set[str], order: deque[str], record_id: str) -> None:
        seen.add(record_id)
        order.append(record_id)
        if len(order) > self.max_per_group:
            seen.discard(order.popleft())

    def seed(self, group: str, record_ids: Iterable[str]) -> None:
        """Remember ids already delivered, **oldest first** (when more than the bound are given,
        the last ones are kept). ``NewestIds`` puts a scanned delivery topic in that order."""
        seen, order = self._of(group)
        for rid in record_ids:
            if rid not in seen:
                self._remember(seen, order, rid)

    def first_time(self, group: str, record_id: str) -> bool:
        """True once per (group, record) within the bound: marks it as sent."""
        seen, order = self._of(group)
        if record_id in seen:
            return False
        self._remember(seen, order, record_id)
        return True

    def forget(self, group: str, record_id: str) -> None:
        """Undo ``first_time`` when the send failed, so a retry can deliver it."""
        seen, order = self._of(group)
        if record_id not in seen:
            return
        seen.discard(record_id)
        # Normally the id just added, so O(1); otherwise a rare linear removal.
        if order[-1] == record_id:
            order.pop()
        else:
            order.remove(record_id)

    def size(self) -> int:
        return sum(len(s) for s in self._seen.values())


class NewestIds:
    """Keeps the ``n`` newest ids of (timestamp ms, id) pairs added in read order.

    A delivery topic has several partitions and a scan interleaves them in no time order, so
    keeping "the last n read" could drop one partition's newest ids, the very ones a crashed
    batch redelivers. Ties keep read order (offset order within a partition). Memory is O(n)
    however long the topic, so seeding does not need the whole topic in memory either.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._heap: list[tuple[int, int, str]] = []
        self._read = 0

    def add(self, timestamp_ms: int, record_id: str) -> None:
        item = (timestamp_ms, self._read, record_id)
        self._read += 1
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def oldest_first(self) -> list[str]:
        return [rid for _, _, rid in sorted(self._heap)]
