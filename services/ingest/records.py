"""Build what ingest writes: the raw record (personal fields sealed) and the rejection message
(no plaintext personal data). Pure apart from the key store it is handed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any, Protocol

from schemas.base import FeedModel, personal_fields
from schemas.envelope import Envelope, RawRecord


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


def build_rejection(*, partner: str, feed: str, position: int | None, position_kind: str,
                    problems: list[tuple[str, str]], original: Any, raw_text: str | None,
                    sealer: Sealer, now: datetime, rejection_id: str) -> dict[str, Any]:
    """A dead letter: reason and context in clear, the original sealed so it can be replayed.

    The whole original is sealed, not just its personal fields: a record that failed validation
    may carry personal data in any field (a name typed into the category, say).
    """
    payload = {"original": original, "raw_text": raw_text}
    return {
        "rejection_id": rejection_id,
        "partner": partner,
        "feed": feed,
        position_kind: position,
        "problems": [{"pointer": p, "reason": r} for p, r in problems],
        "rejected_at": now.isoformat(),
        "sealed": sealer.seal(payload, rejection_id, now.date()),
    }
