"""Per-process guards of the front door: request rate per partner, Idempotency-Key responses and
the recent-record window. Pure: the clock is passed in, no Kafka, no HTTP.

All three are per ingest process. With several ingest replicas behind a load balancer a partner
gets each replica's rate, and an Idempotency-Key is honoured only on the replica that saw it
first; neither can cause a duplicate downstream, because hub record ids are deterministic and
every later stage dedupes by them.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


class RateLimiter:
    """A token bucket per partner: ``rate`` requests per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, partner: str, now: float) -> float:
        """Spend one token; return 0 if allowed, else the seconds until a token is due."""
        if self.rate <= 0:
            return 0.0
        tokens, last = self._buckets.get(partner, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[partner] = (tokens - 1.0, now)
            return 0.0
        self._buckets[partner] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; never 0, or clients retry at once."""
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: Any
    stored_at: float


class IdempotencyConflict(Exception):
    """Same Idempotency-Key, different request. Not a HubError: it never leaves ingest's app."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class IdempotencyCache:
    """Remembers the final answer to each (partner, key) for ``ttl`` seconds, newest ``entries``.

    Only final answers are stored (2xx and 422): a 503 or 429 is not, so the retry the client is
    told to make goes through.
    """

    def __init__(self, entries: int, ttl: float) -> None:
        self.entries = entries
        self.ttl = ttl
        self._done: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._in_flight: dict[tuple[str, str], str] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        h = hashlib.sha256()
        for part in (method.encode(), path.encode(), body):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
        return h.hexdigest()

    def begin(self, partner: str, key: str, fingerprint: str, now: float) -> StoredResponse | None:
        """The stored answer to replay, or None after marking the request in flight.

        Raises IdempotencyConflict: 422 when the key was used for a different request, 409 when
        the first request with this key is still being processed.
        """
        slot = (partner, key)
        self._expire(now)
        done = self._done.get(slot)
        if done is not None:
            if done.fingerprint != fingerprint:
                raise IdempotencyConflict(422, "Idempotency-Key was already used for a different "
                                               "request; use a new key for a new request")
            self._done.move_to_end(slot)
            return done
        if slot in self._in_flight:
            if self._in_flight[slot] != fingerprint:
                raise IdempotencyConflict(422, "Idempotency-Key is in use by a different request")
            raise IdempotencyConflict(409, "a request with this Idempotency-Key is still being "
                                           "processed; retry when it has finished")
        self._in_flight[slot] = fingerprint
        return None

    def finish(self, partner: str, key: str, status: int | None, body: Any, now: float) -> None:
        """Store the answer (``status`` None: the request failed; forget it so it can retry)."""
        slot = (partner, key)
        fingerprint = self._in_flight.pop(slot, None)
        if fingerprint is None or status is None:
            return
        self._done[slot] = StoredResponse(fingerprint, status, body, now)
        while len(self._done) > self.entries:
            self._done.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._done:
            slot, first = next(iter(self._done.items()))
            if now - first.stored_at <= self.ttl:
                break
            del self._done[slot]


class RecentRecords:
    """The last ``size`` records acknowledged, by hub record id and content digest.

    A resend of exactly the same content is answered from here without writing the raw topic
    again. A resend with different content (a correction) is written: the raw topic keeps it for
    audit, and downstream stages decide by hub record id.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[str, str] = OrderedDict()

    def seen(self, record_id: str, digest: str) -> bool:
        if self.size <= 0:
            return False
        if self._seen.get(record_id) == digest:
            self._seen.move_to_end(record_id)
            return True
        return False

    def add(self, record_id: str, digest: str) -> None:
        if self.size <= 0:
            return
        self._seen[record_id] = digest
        self._seen.move_to_end(record_id)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
