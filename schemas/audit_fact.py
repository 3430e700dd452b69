"""An unchained audit fact, as producers publish it on ``s115.audit.facts`` (router: disclosures,
alerts and unrouted records; depersonalise: withheld and generalised records) or
``s115.audit.officer`` (the officer's CLI and page: configuration changes, officer actions).

The chainer (``services/router/audit_sink.py``) reads every fact with this model and quarantines
(dead-letters) what does not validate, so a wrong type such as ``"fields": 5`` is one dead letter,
never a stopped chain. ``at`` is what the producer claims; the chainer stamps the chained event's
time itself and ignores it. ``kind="config"`` is accepted from the officer topic only: the broker's
ACLs let only the officer principal write there, while every service may write the facts topic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

#: unrouted, withheld and generalised account for records that reached no one or reached them
#: coarsened (issue 16; services/core/audit/accounting.py).
#: access: a group member read something (page, stream, export, records, pack).
FactKind = Literal["disclosure", "alert", "config", "unrouted", "withheld", "generalised",
                   "access"]
_HEX64 = r"^[0-9a-f]{64}$"


class AuditFact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fact_id: StrictStr = Field(min_length=1, max_length=512,
                               description="Identity: a re-emitted fact is chained once.")
    kind: FactKind
    at: StrictStr | None = Field(default=None, max_length=64,
                                 description="Producer's claimed time; not chained.")
    hub_record_id: StrictStr | None = Field(default=None, max_length=200)
    partner: StrictStr | None = Field(default=None, max_length=200)
    feed: StrictStr | None = Field(default=None, max_length=200)
    recipient: StrictStr | None = Field(default=None, max_length=200)
    protocol: StrictStr | None = Field(default=None, max_length=200)
    lawful_basis: StrictStr | None = Field(default=None, max_length=4000)
    fields: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    payload_digest: StrictStr | None = Field(default=None, pattern=_HEX64)
    detail: dict[StrictStr, Any] = Field(default_factory=dict)
