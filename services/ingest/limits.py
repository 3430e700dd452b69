"""Per-process guards of the front door: request rate per partner, Idempotency-Key responses and
the recent-record window. Pure: the clock is passed in, no Kafka, no HTTP.

All three are per ingest process. With several ingest replicas behind a load balancer a partner
gets each replica's rate, and an Idempotency-Key is honoured only on the replica that saw it
first; neither can cause a duplicate downstream, because hub record ids are deterministic and
every later stage dedupes by them.
"""

from __future__ import annotations

import hashlib
import json
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
    size: int = 0


class IdempotencyConflict(Exception):
    """Same Idempotency-Key, different request. Not a HubError: it never leaves ingest's app."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def answer_bytes(body: Any) -> int:
    """Size of an answer as JSON: what storing it costs, near enough (Python objects cost more,
    but in proportion)."""
    return len(json.dumps(body, separators=(",", ":"), default=str))


class IdempotencyCache:
    """Remembers the final answer to each (partner, key) for ``ttl`` seconds, newest ``entries``,
    and at most ``bytes_per_partner`` bytes of answers per partner (issue 12: thirty-kilobyte
    bodies of empty records under fresh keys stored megabytes of rejections apiece). Past the
    budget the partner's oldest answers are forgotten first; an answer over a quarter of the
    budget is not stored at all, so one partner can never crowd out another and the process
    holds at most ``partners x bytes_per_partner``. A forgotten answer only means a retry is
    processed again, which is harmless: hub record ids are deterministic.

    Only final answers are stored (2xx and 422): a 503 or 429 is not, so the retry the client is
    told to make goes through.
    """

    def __init__(self, entries: int, ttl: float, bytes_per_partner: int = 4_000_000) -> None:
        self.entries = entries
        self.ttl = ttl
        self.bytes_per_partner = bytes_per_partner
        self._done: OrderedDict[tuple[str, str], StoredResponse] = OrderedDict()
        self._in_flight: dict[tuple[str, str], str] = {}
        self._bytes: dict[str, int] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        h = hashlib.sha256()
        for part in (method.encode(), path.encode(), body):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
        return h.hexdigest()

    def bytes_held(self, partner: str) -> int:
        return self._bytes.get(partner, 0)

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
        size = answer_bytes(body)
        if size > self.bytes_per_partner // 4:
            return
        self._drop(slot)
        self._done[slot] = StoredResponse(fingerprint, status, body, now, size)
        self._bytes[partner] = self._bytes.get(partner, 0) + size
        if self._bytes[partner] > self.bytes_per_partner:
            # The partner's oldest answers first (a linear pass, only when over budget).
            for old in [s for s in self._done if s[0] == partner]:
                if self._bytes.get(partner, 0) <= self.bytes_per_partner:
                    break
                self._drop(old)
        while len(self._done) > self.entries:
            self._drop(next(iter(self._done)))

    def _drop(self, slot: tuple[str, str]) -> None:
        old = self._done.pop(slot, None)
        if old is not None:
            left = self._bytes.get(slot[0], 0) - old.size
            if left > 0:
                self._bytes[slot[0]] = left
            else:
                self._bytes.pop(slot[0], None)

    def _expire(self, now: float) -> None:
        while self._done:
            slot, first = next(iter(self._done.items()))
            if now - first.stored_at <= self.ttl:
                break
            self._drop(slot)


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
