"""Build what ingest writes: the raw record (personal fields sealed) and the rejection message
(no plaintext personal data). Pure apart from the key store it is handed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from schemas.base import FeedModel, personal_fields
from schemas.dead_letter import DeadLetter
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import FEEDS
from schemas.location import Location

#: Field names a pointer may show in clear on s115.rejected. Anything else in a pointer is a key
#: the partner typed (an unknown field), which may itself be personal data ("John Smith": "x").
_MODELS: tuple[type[BaseModel], ...] = (*FEEDS.values(), Location)
_KNOWN_NAMES = frozenset(name for m in _MODELS for name in m.model_fields)
UNKNOWN_SEGMENT = "(unknown-field)"
#: HKDF info of the key behind hub record ids.
RECORD_ID_INFO = b"s115hub/record-id/v1"


class Sealer(Protocol):
    def seal(self, fields: dict[str, Any], record_id: str, day: Any) -> dict[str, Any]: ...


def hub_record_id(key: bytes, partner: str, source_id: str) -> str:
    """Keyed, deterministic: a retry or replay of the same (partner, source id) gets the same id,
    and the id cannot be recomputed from a guessed source id without the hub's key."""
    mac = hmac.new(key, f"{partner}\x00{source_id}".encode(), hashlib.sha256).digest()
    return "r" + base64.b32encode(mac[:15]).decode().lower()


def build_raw(record: FeedModel, *, partner: str, feed: str, record_id_key: bytes,
              sealer: Sealer, now: datetime) -> RawRecord:
    data = record.model_dump(mode="json", exclude_none=True)
    secret = personal_fields(type(record))
    personal = {k: v for k, v in data.items() if k in secret}
    clear = {k: v for k, v in data.items() if k not in secret}
    source_id = str(data["source_id"])
    rid = hub_record_id(record_id_key, partner, source_id)
    env = Envelope(hub_record_id=rid, partner=partner, feed=feed,  # type: ignore[arg-type]
                   source_id=source_id, received_at=now)
    sealed = sealer.seal(personal, rid, now.date()) if personal else None
    return RawRecord(envelope=env, fields=clear, sealed=sealed)


def public_pointer(ptr: str) -> str:
    """``ptr`` with every segment that is neither a schema field name nor an index masked."""
    if not ptr:
        return ptr
    out = []
    for seg in ptr.split("/")[1:]:
        name = seg.replace("~1", "/").replace("~0", "~")
        out.append(seg if name in _KNOWN_NAMES or seg.isdigit() else UNKNOWN_SEGMENT)
    return "".join("/" + s for s in out)


def public_problems(problems: list[tuple[str, str]]) -> list[dict[str, str]]:
    """Problems as they may appear outside ingest: pointers masked, reasons capped.

    Reasons come from pydantic without the input value (``include_input=False``) or from our
    own parsers, which never quote the input.
    """
    return [{"pointer": public_pointer(p), "reason": r[:300]} for p, r in problems]


def rejected_source_id(original: Any, problems: list[tuple[str, str]]) -> str | None:
    """The partner's own reference of a rejected record, when it is one a valid record could
    carry (a string within the schema's bounds, not itself the problem), else None.

    Shown in clear so the partner and ``dlq list --source-id`` find the letter: a valid
    record's ``source_id`` is in clear on the raw topic already, so this discloses nothing new.
    """
    if not isinstance(original, dict):
        return None
    sid = original.get("source_id")
    if not isinstance(sid, str) or not 1 <= len(sid) <= 128 or not sid.isprintable():
        return None
    if any(p == "/source_id" or p.startswith("/source_id/") for p, _ in problems):
        return None
    return sid


def build_rejection(*, partner: str, feed: str, position: int | None, position_kind: str,
                    problems: list[tuple[str, str]], original: Any, raw_text: str | None,
                    sealer: Sealer, now: datetime, rejection_id: str,
                    context: dict[str, str] | None = None) -> dict[str, Any]:
    """A dead letter: reason and context in clear, the original sealed so it can be replayed.

    The whole original is sealed, not just its personal fields: a record that failed validation
    may carry personal data in any field (a name typed into the category, say). The exact
    pointers go inside the seal too, since an unknown field's name is partner-typed text.
    """
    payload = {"original": original, "raw_text": raw_text,
               "problems": [{"pointer": p, "reason": r} for p, r in problems]}
    # The topic's one contract (schemas/dead_letter.py), as the stage runner's letters are.
    letter = DeadLetter.model_validate({
        "rejection_id": rejection_id, "partner": partner, "feed": feed,
        position_kind: position, "source_id": rejected_source_id(original, problems),
        "context": context or None, "problems": public_problems(problems), "rejected_at": now,
        "sealed": sealer.seal(payload, rejection_id, now.date())})
    return letter.model_dump(mode="json", exclude_none=True)
