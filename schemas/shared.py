"""The depersonalised record that leaves depersonalise on ``s115.shared``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.feeds import FeedName


class SharedRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hub_record_id: str
    partner: str
    feed: FeedName
    category: str
    ward_code: str | None = Field(description="Derived from the precise location before it was "
                                              "generalised; None when outside known wards.")
    ward_name: str | None = None
    district_code: str | None = None
    district_name: str | None = None
    fields: dict[str, Any] = Field(
        description="Released fields, each after its protocol transform.")
    protocol: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*@\d+$",
                          description="id@version of the protocol that released the record.")
    key_epoch: int | None = Field(default=None, description="Pseudonym key epoch, if any.")
    released_at: datetime
