"""The disclosure audit trail as a hash chain, with signed checkpoints.

Answers "who received what about this incident, when, and under which protocol?" in a form an
inspector can check offline: every event commits to the one before it, so editing, deleting,
reordering or inserting an event breaks a link; and signed checkpoints commit to the head at a
given position, so even a rewrite that recomputes every hash is caught at the next checkpoint.

Pure: no broker, no files (see ``audit_bundle`` for export). Hashes are SHA-256 over
``canonical_bytes`` (RFC 8785) of every field except ``hash``, so any JCS library can
recompute them.

Over 400 lines because the event model, hashing, checkpoints and verification are one invariant
read together; split, the hash rule would be spread over several files.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from services.core.audit.errors import AuditError
from services.core.crypto.canonical import canonical_bytes
from services.core.crypto.errors import CryptoError

__all__ = [
    "ACCOUNTING_KINDS", "GENESIS_HASH", "AuditEvent", "ChainWriter", "Checkpoint",
    "EventKind",
    "VerifyReport", "checkpoint_message", "event_hash", "make_checkpoint", "query",
    "seal_bytes", "verify_chain", "verify_checkpoint",
]

GENESIS_HASH = "0" * 64
#: disclosure, alert and config say what left the hub or changed; unrouted, withheld and
#: generalised account for records that reached no one or reached them coarsened (issue 16).
#: access: a group member read something (services/router/web/access_audit.py).
EventKind = Literal["disclosure", "alert", "config", "unrouted", "withheld", "generalised",
                    "access"]
#: Kinds that account for one record, each needing the record's id (see accounting_facts).
ACCOUNTING_KINDS = ("unrouted", "withheld", "generalised")

_HEX64 = r"^[0-9a-f]{64}$"
# Same shape as SharedRecord.protocol, so an audit entry can always be matched to its release.
_PROTOCOL = r"^[a-z0-9][a-z0-9._-]*@\d+$"
# Signed with the checkpoint fields so a checkpoint signature can never be replayed as a
# signature over some other document that happens to have the same keys.
_CHECKPOINT_CONTEXT = "s115hub/audit-checkpoint/v1"


def _utc(v: datetime) -> datetime:
    # One zone everywhere, so equal instants hash equally and queries compare like with like.
    return v.astimezone(UTC)


class AuditEvent(BaseModel):
    """One link of the chain. Build with ``ChainWriter.append``; never construct by hand."""

    # extra="forbid": a key outside the hash would be unaudited content riding along.
    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: StrictInt = Field(ge=0, description="Position in the chain, from 0.")
    kind: EventKind
    at: AwareDatetime
    hub_record_id: StrictStr | None = Field(default=None, min_length=1)
    partner: StrictStr | None = Field(default=None, min_length=1)
    feed: StrictStr | None = Field(default=None, min_length=1)
    recipient: StrictStr | None = Field(default=None, min_length=1,
                                        description="Tasking group that received it.")
    protocol: StrictStr | None = Field(default=None, pattern=_PROTOCOL)
    lawful_basis: StrictStr | None = Field(default=None, min_length=1)
    fields: dict[StrictStr, StrictStr] = Field(
        default_factory=dict, description="Released field name -> transform applied.")
    payload_digest: StrictStr | None = Field(default=None, pattern=_HEX64)
    detail: dict[StrictStr, Any] = Field(default_factory=dict)
    prev_hash: StrictStr = Field(pattern=_HEX64)
    hash: StrictStr = Field(pattern=_HEX64)

    @field_validator("at")
    @classmethod
    def _at_in_utc(cls, v: datetime) -> datetime:
        return _utc(v)

    @field_validator("detail")
    @classmethod
    def _detail_is_canonical(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Refuse now what could not be hashed later (floats are fine; sets, NaN, bytes are not).
        # ChainWriter.append canonicalises the whole event right after validating it and refuses
        # it then, so it skips this check instead of canonicalising detail twice (issue 12).
        if info.context is _SEALING:
            return v
        try:
            canonical_bytes(v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"detail cannot be hashed: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _complete_for_kind(self) -> AuditEvent:
        # A disclosure entry that cannot say what, to whom and under which protocol is useless
        # to the designated officer, so it is refused at write time rather than found at audit.
        if self.kind == "disclosure":
            missing = [n for n in ("hub_record_id", "recipient", "protocol", "lawful_basis",
                                   "payload_digest") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"a disclosure must record {', '.join(missing)}")
        elif self.kind == "config" and not isinstance(self.detail.get("action"), str):
            raise ValueError('a config event must say what happened in detail["action"]')
        elif self.kind == "access" and (self.recipient is None
                                        or not isinstance(self.detail.get("actor"), str)):
            raise ValueError("an access event must name the group (recipient) and who read "
                             'it (detail["actor"])')
        elif self.kind in ACCOUNTING_KINDS and (self.hub_record_id is None
                                                or self.partner is None):
            raise ValueError(f"a {self.kind} event must record hub_record_id and partner")
        return self


# Validation context of ChainWriter.append (identity-compared): detail is checked by sealing.
_SEALING: dict[str, bool] = {"sealing": True}
# The hash placeholder of a draft and the bytes it canonicalises to as the top-level ``hash``
# member. "hash" is never the first key ("at" sorts before it and is always present), so the
# member is always preceded by a comma.
_PLACEHOLDER_MEMBER = b',"hash":"' + GENESIS_HASH.encode() + b'"'


def seal_bytes(draft_bytes: bytes) -> tuple[str, bytes]:
    """(hash, canonical bytes of the sealed event) from the canonical bytes of the draft whose
    ``hash`` is the genesis placeholder: one canonicalisation gives both (issue 12 profile: the
    chain canonicalised each event three times).

    Canonical JSON sorts members by key with no whitespace, so the event without ``hash`` is the
    draft's bytes with the top-level hash member cut out, and the sealed event is the same bytes
    with the real hash in its place. The top-level member is the *last* occurrence: every member
    sorting after "hash" (hub_record_id ... seq) is a string, int or null, and a string can never
    hold an unescaped quote, so nothing after it can look like a member."""
    cut = draft_bytes.rfind(_PLACEHOLDER_MEMBER)
    if cut < 0:
        raise AuditError("audit event draft has no hash placeholder")  # not reachable
    head, tail = draft_bytes[:cut], draft_bytes[cut + len(_PLACEHOLDER_MEMBER):]
    digest = hashlib.sha256(head + tail).hexdigest()
    return digest, b"".join((head, b',"hash":"', digest.encode(), b'"', tail))


def event_hash(event: AuditEvent) -> str:
    """The hash ``event`` should carry: SHA-256 of the canonical form of all other fields."""
    return hashlib.sha256(canonical_bytes(event.model_dump(exclude={"hash"}))).hexdigest()


def _check_head(head_hash: str, next_seq: int) -> None:
    if next_seq < 0:
        raise AuditError(f"next_seq must be >= 0, got {next_seq}")
    if len(head_hash) != 64 or any(c not in "0123456789abcdef" for c in head_hash):
        raise AuditError("head_hash must be 64 lowercase hex characters")
    # Only an empty chain may link to genesis; anything else means the resume state is wrong
    # and continuing would fork the chain.
    if (next_seq == 0) != (head_hash == GENESIS_HASH):
        raise AuditError(f"head_hash {head_hash[:12]}... does not fit next_seq {next_seq}: "
                         "only an empty chain starts from the genesis hash")


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _own_copy(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``detail`` no later change by the caller can reach. A flat dict of scalars (a
    disclosure's detail) needs no deepcopy, which was ~8 % of the chain's CPU (issue 12)."""
    d = dict(detail or {})
    if all(type(v) in _SCALARS for v in d.values()):
        return d
    return copy.deepcopy(d)


class ChainWriter:
    """Appends events to one chain. Resumable: give it the last stored event's hash and seq + 1.

    The writer does not store anything. If storing an appended event fails, rebuild the writer
    with ``ChainWriter.resume(last_stored_event)``; otherwise the next event would link to one
    that was never kept and the chain would show a deletion.
    """

    def __init__(self, head_hash: str = GENESIS_HASH, next_seq: int = 0, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        _check_head(head_hash, next_seq)
        self._head = head_hash
        self._next = next_seq
        self._clock = clock or (lambda: datetime.now(UTC))
        # Two threads appending at once would give two events the same seq and prev_hash.
        self._lock = threading.Lock()

    @classmethod
    def resume(cls, last: AuditEvent | None, *,
               clock: Callable[[], datetime] | None = None) -> ChainWriter:
        """Continue after ``last`` (None: start a new chain)."""
        if last is None:
            return cls(clock=clock)
        if event_hash(last) != last.hash:
            raise AuditError(f"cannot resume from event seq {last.seq}: its hash does not match "
                             "its content; verify the stored chain first")
        return cls(last.hash, last.seq + 1, clock=clock)

    @property
    def head_hash(self) -> str:
        return self._head

    @property
    def next_seq(self) -> int:
        return self._next

    def append(self, *, kind: EventKind, at: datetime | None = None,
               hub_record_id: str | None = None, partner: str | None = None,
               feed: str | None = None, recipient: str | None = None,
               protocol: str | None = None, lawful_basis: str | None = None,
               fields: Mapping[str, str] | None = None, payload_digest: str | None = None,
               detail: Mapping[str, Any] | None = None) -> AuditEvent:
        """Seal the next event. Raises AuditError (and leaves the chain as it was) if invalid."""
        return self.append_message(
            kind=kind, at=at, hub_record_id=hub_record_id, partner=partner, feed=feed,
            recipient=recipient, protocol=protocol, lawful_basis=lawful_basis, fields=fields,
            payload_digest=payload_digest, detail=detail)[0]

    def append_message(self, *, kind: EventKind, at: datetime | None = None,
                       hub_record_id: str | None = None, partner: str | None = None,
                       feed: str | None = None, recipient: str | None = None,
                       protocol: str | None = None, lawful_basis: str | None = None,
                       fields: Mapping[str, str] | None = None,
                       payload_digest: str | None = None,
                       detail: Mapping[str, Any] | None = None) -> tuple[AuditEvent, bytes]:
        """``append`` that also returns the sealed event's canonical bytes (what
        ``canonical_bytes(event)`` gives), computed with its hash from one canonicalisation."""
        with self._lock:
            draft = {
                "seq": self._next, "kind": kind, "at": at if at is not None else self._clock(),
                "hub_record_id": hub_record_id, "partner": partner, "feed": feed,
                "recipient": recipient, "protocol": protocol, "lawful_basis": lawful_basis,
                "fields": dict(fields or {}), "payload_digest": payload_digest,
                # Deep copy: a caller mutating its dict later must not alter a sealed event.
                "detail": _own_copy(detail), "prev_hash": self._head,
                "hash": GENESIS_HASH,  # placeholder so the draft validates; replaced below
            }
            try:
                unsealed = AuditEvent.model_validate(draft, context=_SEALING)
            except ValidationError as exc:
                raise AuditError(f"audit event refused: {exc}") from exc
            try:
                digest, sealed = seal_bytes(canonical_bytes(unsealed.model_dump()))
            except (TypeError, ValueError) as exc:
                # The same refusal the detail validator gives outside the writer.
                raise AuditError(f"audit event refused: detail cannot be hashed: {exc}") from exc
            event = unsealed.model_copy(update={"hash": digest})
            self._head, self._next = event.hash, event.seq + 1
            return event, sealed


class Checkpoint(BaseModel):
    """A signed statement "the chain's head at ``seq`` is ``head_hash``"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: StrictInt = Field(ge=0)
    head_hash: StrictStr = Field(pattern=_HEX64)
    at: AwareDatetime
    signer_key_id: StrictStr = Field(min_length=1)
    signature: StrictStr = Field(description="Ed25519, standard base64.")

    @field_validator("at")
    @classmethod
    def _at_in_utc(cls, v: datetime) -> datetime:
        return _utc(v)


def checkpoint_message(seq: int, head_hash: str, at: datetime, signer_key_id: str) -> bytes:
    """The exact bytes a checkpoint signature covers (published so inspectors can rebuild them)."""
    return canonical_bytes({"context": _CHECKPOINT_CONTEXT, "seq": seq, "head_hash": head_hash,
                            "at": at, "signer_key_id": signer_key_id})


def make_checkpoint(head: AuditEvent, signing_key: Ed25519PrivateKey, key_id: str, *,
                    at: datetime | None = None) -> Checkpoint:
    """Sign the chain head as of ``head`` (normally the event just stored)."""
    when = _utc(at) if at is not None else datetime.now(UTC)
    sig = signing_key.sign(checkpoint_message(head.seq, head.hash, when, key_id))
    return Checkpoint(seq=head.seq, head_hash=head.hash, at=when, signer_key_id=key_id,
                      signature=base64.b64encode(sig).decode("ascii"))


def verify_checkpoint(cp: Checkpoint, public_keys: Mapping[str, Ed25519PublicKey], *,
                      head: AuditEvent | None = None) -> None:
    """Raise CryptoError unless ``cp`` is signed by a known key (and matches ``head`` if given)."""
    key = public_keys.get(cp.signer_key_id)
    if key is None:
        raise CryptoError(f"checkpoint at seq {cp.seq} is signed by unknown key "
                          f"{cp.signer_key_id!r}")
    try:
        sig = base64.b64decode(cp.signature, validate=True)
        key.verify(sig, checkpoint_message(cp.seq, cp.head_hash, cp.at, cp.signer_key_id))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise CryptoError(f"checkpoint at seq {cp.seq}: signature does not verify with key "
                          f"{cp.signer_key_id!r}") from exc
    if head is not None and (head.seq != cp.seq or head.hash != cp.head_hash):
        raise CryptoError(f"checkpoint at seq {cp.seq} signs head {cp.head_hash[:12]}... but the "
                          f"chain has {head.hash[:12]}... at seq {head.seq}")


class VerifyReport(BaseModel):
    """Outcome of a verification. Tampering is reported here, never raised.

    ``first_bad_position`` indexes the events *as given* (0 = first event read), and is the
    first place the stream is provably wrong. An event edited and re-hashed shows at the next
    event; a rewrite that re-hashes everything after it shows only at the next signed checkpoint.
    It is None when the events are not implicated (a forged checkpoint, a bad bundle file).
    """

    model_config = ConfigDict(frozen=True)

    ok: bool
    events_checked: int = Field(description="Events read before verification stopped.")
    checkpoints_checked: int = Field(description="Checkpoints examined.")
    first_bad_position: int | None = None
    reason: str | None = None
    bad_checkpoint: int | None = Field(default=None,
                                       description="Index of the offending checkpoint, if any.")
    head_hash: str | None = Field(default=None, description="Hash of the last event, when ok.")
    signer_fingerprint: str | None = Field(
        default=None, description="Bundles only: SHA-256 of the key that signed the manifest. "
                                  "Without a trusted key, compare it with the published one.")


@dataclass
class _Problem:
    position: int | None
    reason: str
    checkpoint: int | None = None


def _as_event(raw: object) -> AuditEvent:
    if isinstance(raw, AuditEvent):
        return raw
    if isinstance(raw, Mapping):
        return AuditEvent.model_validate(dict(raw))
    raise ValueError(f"expected an event object, got {type(raw).__name__}")


def _prev_hash_of(raw: object) -> object:
    if isinstance(raw, AuditEvent):
        return raw.prev_hash
    return raw.get("prev_hash") if isinstance(raw, Mapping) else None


class _Peekable:
    def __init__(self, items: Iterable[object]) -> None:
        self._it: Iterator[object] = iter(items)
        self._buf: list[object] = []

    def next(self) -> tuple[bool, object]:
        if self._buf:
            return True, self._buf.pop()
        for item in self._it:
            return True, item
        return False, None

    def peek(self) -> tuple[bool, object]:
        got, item = self.next()
        if got:
            self._buf.append(item)
        return got, item


def _check_events(events: Iterable[object], start_seq: int, start_prev_hash: str,
                  on_event: Callable[[int, AuditEvent], _Problem | None]
                  ) -> tuple[int, AuditEvent | None, _Problem | None]:
    """Walk the stream until the first broken link. Returns (events read, last good, problem)."""
    stream = _Peekable(events)
    expected_seq, head = start_seq, start_prev_hash
    last: AuditEvent | None = None
    pos = 0
    while True:
        got, raw = stream.next()
        if not got:
            return pos, last, None
        try:
            ev = _as_event(raw)
        except (ValidationError, ValueError) as exc:
            return pos + 1, last, _Problem(pos, f"malformed event: {exc}")
        if event_hash(ev) != ev.hash:
            return pos + 1, last, _Problem(pos, f"event seq {ev.seq}: hash does not match its "
                                                "content (edited)")
        if ev.seq == expected_seq and ev.prev_hash == head:
            pass
        elif last is not None and ev.seq == last.seq and ev.prev_hash == last.prev_hash:
            # Two well-formed events claim the same slot: one was inserted. The genuine one is
            # whichever the next event links to, so look one ahead before blaming either.
            more, nxt = stream.peek()
            follows_this = more and _prev_hash_of(nxt) == ev.hash and ev.hash != last.hash
            bad = pos - 1 if follows_this else pos
            return pos + 1, last, _Problem(bad, f"two events claim seq {ev.seq}; the one at "
                                                f"position {bad} is not part of the chain "
                                                "(inserted)")
        elif ev.seq > expected_seq:
            return pos + 1, last, _Problem(pos, f"expected seq {expected_seq}, found {ev.seq}: "
                                                "events missing here (deleted) or moved")
        elif ev.seq < expected_seq:
            return pos + 1, last, _Problem(pos, f"expected seq {expected_seq}, found {ev.seq}: "
                                                "event out of order (moved) or duplicated "
                                                "(inserted)")
        else:
            return pos + 1, last, _Problem(pos, f"event seq {ev.seq} does not link to the event "
                                                "before it: this event or the previous one was "
                                                "replaced or re-hashed")
        problem = on_event(pos, ev)
        if problem is not None:
            return pos + 1, ev, problem
        expected_seq, head, last = ev.seq + 1, ev.hash, ev
        pos += 1


def verify_chain(events: Iterable[AuditEvent | Mapping[str, Any]],
                 checkpoints: Iterable[Checkpoint | Mapping[str, Any]],
                 public_keys: Mapping[str, Ed25519PublicKey], *,
                 start_seq: int = 0, start_prev_hash: str = GENESIS_HASH) -> VerifyReport:
    """Check every link and every checkpoint; report the first problem found.

    ``events`` may be a lazy stream (it is read once); ``checkpoints`` may come in any order and
    each must match an event present. ``start_seq``/``start_prev_hash`` verify a segment that
    does not begin at genesis (e.g. anchored by an earlier checkpoint).
    """
    cps: list[Checkpoint | None] = []
    sig_problems: list[_Problem] = []
    by_seq: dict[int, list[int]] = {}
    for j, raw in enumerate(checkpoints):
        try:
            parsed = raw if isinstance(raw, Checkpoint) else Checkpoint.model_validate(dict(raw))
            verify_checkpoint(parsed, public_keys)
        except (ValidationError, CryptoError, TypeError, ValueError) as exc:
            # An unauthenticated checkpoint vouches for nothing, so its head is never compared.
            sig_problems.append(_Problem(None, f"checkpoint {j}: {exc}", j))
            cps.append(None)
            continue
        cps.append(parsed)
        by_seq.setdefault(parsed.seq, []).append(j)
    last_matched: list[int] = []  # seq of the latest checkpoint confirmed, for the reason text

    def on_event(pos: int, ev: AuditEvent) -> _Problem | None:
        for j in by_seq.pop(ev.seq, []):
            cp = cps[j]
            assert cp is not None
            if cp.head_hash != ev.hash:
                since = (f"after seq {last_matched[-1]}, which an earlier checkpoint confirms"
                         if last_matched else "no earlier checkpoint narrows it down")
                return _Problem(pos, f"checkpoint {j} signs head {cp.head_hash[:12]}... at seq "
                                     f"{cp.seq} but the chain has {ev.hash[:12]}...: events were "
                                     f"rewritten at or before position {pos} ({since})", j)
            last_matched.append(ev.seq)
        return None

    read, last, problem = _check_events(events, start_seq, start_prev_hash, on_event)
    if problem is None and by_seq:
        # Checkpoints the stream never reached: it was cut short, or they predate the segment.
        j = min(j for js in by_seq.values() for j in js)
        cp = cps[j]
        assert cp is not None
        if last is not None and cp.seq > last.seq:
            problem = _Problem(read, f"checkpoint {j} is at seq {cp.seq} but the chain ends at "
                                     f"seq {last.seq}: events were removed from the end", j)
        elif last is None and cp.seq >= start_seq:
            problem = _Problem(read, f"checkpoint {j} is at seq {cp.seq} but there are no "
                                     "events: events were removed", j)
        else:
            problem = _Problem(0, f"checkpoint {j} is at seq {cp.seq}, before the first event "
                                  f"(seq {start_seq}); it cannot be checked here", j)
    if problem is None and sig_problems:
        problem = sig_problems[0]
    if problem is None:
        return VerifyReport(ok=True, events_checked=read, checkpoints_checked=len(cps),
                            head_hash=last.hash if last else None)
    return VerifyReport(ok=False, events_checked=read, checkpoints_checked=len(cps),
                        first_bad_position=problem.position, reason=problem.reason,
                        bad_checkpoint=problem.checkpoint)


def query(events: Iterable[AuditEvent | Mapping[str, Any]], record: str | None = None,
          group: str | None = None, protocol: str | None = None,
          since: datetime | None = None, until: datetime | None = None,
          kind: EventKind | None = None) -> list[AuditEvent]:
    """Events matching every filter given, in chain order. Does not verify: run verify_chain first.

    ``protocol`` "id@version" matches that version, "id" any version; config events match on
    ``detail["protocol"]``. The window is half-open: ``since <= at < until``.
    """
    for name, bound in (("since", since), ("until", until)):
        if bound is not None and (bound.tzinfo is None or bound.utcoffset() is None):
            raise AuditError(f"{name} must be timezone-aware; a naive time is ambiguous")

    def protocol_matches(ev: AuditEvent) -> bool:
        named = ev.protocol or ev.detail.get("protocol")
        if not isinstance(named, str):
            return False
        return named == protocol if "@" in str(protocol) else named.split("@")[0] == protocol

    out: list[AuditEvent] = []
    for raw in events:
        ev = _as_event(raw)
        if ((record is not None and ev.hub_record_id != record)
                or (group is not None and ev.recipient != group)
                or (protocol is not None and not protocol_matches(ev))
                or (since is not None and ev.at < since)
                or (until is not None and ev.at >= until)
                or (kind is not None and ev.kind != kind)):
            continue
        out.append(ev)
    return out
