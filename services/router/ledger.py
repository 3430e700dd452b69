"""Which records each group has already been sent, so a redelivery from the broker (a restart
between producing and committing) never reaches a group twice. Pure."""

from __future__ import annotations

from collections import defaultdict


class DeliveryLedger:
    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = defaultdict(set)

    def seed(self, group: str, record_ids: set[str]) -> None:
        self._seen[group] |= record_ids

    def first_time(self, group: str, record_id: str) -> bool:
        """True once per (group, record): marks it as sent."""
        seen = self._seen[group]
        if record_id in seen:
            return False
        seen.add(record_id)
        return True

    def forget(self, group: str, record_id: str) -> None:
        """Undo ``first_time`` when the send failed, so a retry can deliver it."""
        self._seen[group].discard(record_id)

    def size(self) -> int:
        return sum(len(s) for s in self._seen.values())
