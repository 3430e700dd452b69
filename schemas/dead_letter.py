"""A dead letter on ``s115.rejected``: what could not be taken, where it was and why, never the
plaintext of what it carried.

Two writers share the contract. Ingest rejects a partner's record (``line``/``index``/``offset``
names its place in the request or inbound topic; the original is sealed under the day's data key
so ``s115hub dlq replay`` can re-present it). The stage runner
(``services/core/kafka/stage_runner.py``) dead-letters any message a stage cannot process:
``stage``, ``topic``, ``partition`` and ``offset`` say where it still lies, and the message itself
is not copied (it stays on its topic for its retention; a reason names the field and the rule,
never the value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pointer: str = Field(description="JSON pointer of the field at fault ('' for the message).")
    reason: str = Field(max_length=1000)


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rejection_id: str = Field(min_length=1, max_length=200,
                              description="Unique; the Kafka key of the letter.")
    stage: str = Field(default="ingest", description="Who refused it: ingest, depersonalise, "
                                                      "router, hotspots, audit-chainer, "
                                                      "config@<service>, inbound.")
    reason_kind: str | None = Field(default=None, description="Bounded label: invalid (failed "
                                    "its contract), rejected (the stage refused it), error (the "
                                    "stage raised), budget (over the per-record work budget).")
    rejected_at: datetime
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    line: int | None = None
    index: int | None = None
    partner: str | None = None
    feed: str | None = None
    hub_record_id: str | None = None
    source_id: str | None = None
    context: dict[str, str] | None = None
    problems: list[Problem] = Field(default_factory=list)
    sealed: dict[str, Any] | None = Field(default=None, description="Ingest only: the original, "
                                          "AES-256-GCM sealed, for replay.")
