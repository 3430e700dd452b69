"""How the chain is stored on ``s115.audit``, and the chainer's state. Pure: no broker.

The topic has one partition and one writer (the chainer). It holds two kinds of message:

* an event: key = the fact id it was chained from, value = canonical JSON of the ``AuditEvent``
  (the same bytes as a line of an exported bundle's ``events.jsonl``);
* a checkpoint: key = ``checkpoint/<seq>``, value = canonical JSON of the signed ``Checkpoint``.

Keys only route and label; nothing trusts them. Dedupe identities are recomputed from hashed
event content (``event_identity``), and a message filed under the wrong key still has to pass
the chain and signature checks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from services.core.audit.chain import AuditEvent, ChainWriter, Checkpoint, make_checkpoint
from services.core.audit.errors import AuditError
from services.core.audit.facts import event_identity, fact_append_kwargs
from services.core.audit.key import HubAuditKey
from services.core.crypto.canonical import canonical_bytes

CHECKPOINT_PREFIX = "checkpoint/"


def event_message(event: AuditEvent, fact_id: str) -> tuple[bytes, bytes]:
    return fact_id.encode(), canonical_bytes(event)


def checkpoint_message(cp: Checkpoint) -> tuple[bytes, bytes]:
    return f"{CHECKPOINT_PREFIX}{cp.seq}".encode(), canonical_bytes(cp)


@dataclass
class StoredChain:
    """The topic split into its two streams, in topic order. Entries that are not JSON objects
    are kept as text so verification reports them at their position instead of skipping them."""

    events: list[Any] = field(default_factory=list)
    checkpoints: list[Any] = field(default_factory=list)
    #: Kafka offset of each entry of ``events`` (to turn a chain position into a topic offset).
    event_offsets: list[int] = field(default_factory=list)

    def add(self, key: bytes | None, value: bytes | None, offset: int = -1) -> None:
        is_cp = key is not None and key.startswith(CHECKPOINT_PREFIX.encode())
        try:
            parsed: Any = json.loads(value) if value else None
        except ValueError:
            parsed = (value or b"").decode("utf-8", "replace")
        if is_cp:
            self.checkpoints.append(parsed)
        else:
            self.events.append(parsed)
            self.event_offsets.append(offset)

    def offset_of(self, position: int | None) -> int | None:
        if position is None or not 0 <= position < len(self.event_offsets):
            return None
        return self.event_offsets[position]


def split_chain(messages: Iterable[tuple[bytes | None, bytes | None, int]]) -> StoredChain:
    out = StoredChain()
    for key, value, offset in messages:
        out.add(key, value, offset)
    return out


class ChainState:
    """The single writer's memory: chain head, fact identities already chained, and when the next
    checkpoint is due. Rebuilt from the stored chain on every start (``recover``)."""

    def __init__(self, key: HubAuditKey, *, every: int = 500, seconds: float = 10.0,
                 clock: Callable[[], datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if every < 1 or seconds <= 0:
            raise AuditError("checkpoint interval must be at least 1 event and above 0 seconds")
        self.key = key
        self.every = every
        self.seconds = seconds
        self._clock = clock or (lambda: datetime.now(UTC))
        self._mono = monotonic
        self.writer = ChainWriter(clock=self._clock)
        self.seen: set[str] = set()
        self.last: AuditEvent | None = None
        self.signed_seq: int | None = None
        self._first_unsigned_at: float | None = None

    def recover(self, stored: StoredChain) -> None:
        """Take the head, identities and last checkpoint from what the topic holds.

        Only the tail is trusted for resuming (its own hash must match); a broken link earlier is
        for ``audit verify`` to report, and appending after it does not hide it.
        """
        last: AuditEvent | None = None
        for pos, raw in enumerate(stored.events):
            if not isinstance(raw, Mapping):
                raise AuditError(f"stored audit event at position {pos} is not a JSON object; "
                                 "run `s115hub audit verify`")
            try:
                ev = AuditEvent.model_validate(dict(raw))
            except ValidationError as exc:
                raise AuditError(f"stored audit event at position {pos} is malformed: {exc}; "
                                 "run `s115hub audit verify`") from exc
            self.seen.add(event_identity(ev))
            last = ev
        self.writer = ChainWriter.resume(last, clock=self._clock)
        self.last = last
        signed = [int(c["seq"]) for c in stored.checkpoints
                  if isinstance(c, Mapping) and isinstance(c.get("seq"), int)
                  and c.get("signer_key_id") == self.key.key_id]
        self.signed_seq = max(signed) if signed else None
        self._first_unsigned_at = self._mono() if self.unsigned else None

    @property
    def unsigned(self) -> int:
        """Events after the latest checkpoint this key signed."""
        if self.last is None:
            return 0
        return self.last.seq - (self.signed_seq if self.signed_seq is not None else -1)

    def accept(self, fact: Mapping[str, Any]) -> AuditEvent | None:
        """Chain ``fact`` unless its identity is already in the chain (then None)."""
        got = self.accept_message(fact)
        return got[0] if got is not None else None

    def accept_message(self, fact: Mapping[str, Any]) -> tuple[AuditEvent, bytes] | None:
        """``accept`` that also gives the event's message value (``event_message``'s bytes),
        sealed and serialised in one canonicalisation."""
        fact_id = str(fact["fact_id"])
        if fact_id in self.seen:
            return None
        # The chainer's clock, not the producer's claim: a fact cannot choose its own time.
        ev, value = self.writer.append_message(
            **{**fact_append_kwargs(fact, stamp=False), "at": self._clock()})
        if event_identity(ev) != fact_id:
            # The fact's id does not describe its content: chaining it would break dedupe later.
            # Roll back by resuming from the last stored head.
            self.writer = ChainWriter.resume(self.last, clock=self._clock)
            raise AuditError(f"audit fact {fact_id}: its id does not match its content "
                             f"(expected {event_identity(ev)})")
        self.seen.add(fact_id)
        self.last = ev
        if self._first_unsigned_at is None:
            self._first_unsigned_at = self._mono()
        return ev, value

    def checkpoint_due(self) -> bool:
        if not self.unsigned:
            return False
        if self.unsigned >= self.every:
            return True
        return (self._first_unsigned_at is not None
                and self._mono() - self._first_unsigned_at >= self.seconds)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the head (None when nothing is unsigned)."""
        if self.last is None or not self.unsigned:
            return None
        cp = make_checkpoint(self.last, self.key.private, self.key.key_id, at=self._clock())
        self.signed_seq = self.last.seq
        self._first_unsigned_at = None
        return cp
