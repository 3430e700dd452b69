"""What ingest wraps around every accepted record before it goes to ``s115.raw.<feed>``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.feeds import FeedName


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hub_record_id: str = Field(description="Deterministic id: the same (partner, source id) "
                                           "always gets the same hub record id.")
    partner: str
    feed: FeedName
    source_id: str
    received_at: datetime


class RawRecord(BaseModel):
    """A record on a raw topic: the envelope, the non-personal fields in clear, and the personal
    fields sealed with AES-256-GCM under the day's data key (``sealed``)."""

    model_config = ConfigDict(extra="forbid")

    envelope: Envelope
    fields: dict[str, Any] = Field(description="Non-personal fields of the feed record.")
    sealed: dict[str, Any] | None = Field(
        default=None, description="Personal fields, encrypted: {key_id, nonce, ciphertext}.")
