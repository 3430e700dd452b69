"""Values on the compacted ``s115.config`` topic, by key kind (the county document itself is
``services.core.config.county.County``). Every service's config follower reads with these and
refuses, keeping its previous state, whatever does not validate: see
``services/core/config/state.py``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class ProtocolDocument(BaseModel):
    """``protocol/<id>@<version>``: the signed YAML text as the officer applied it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    yaml: StrictStr = Field(min_length=1, max_length=1_000_000)
    source: StrictStr | None = Field(default=None, max_length=1000)


class OfficerKey(BaseModel):
    """``officer/<key id>``: a designated officer's Ed25519 public key and party."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    party: StrictStr = Field(min_length=1, max_length=200)
    officer: StrictStr = Field(min_length=1, max_length=200)
    public_key_pem: StrictStr = Field(min_length=1, max_length=10_000)
    #: Who vouched for the key in the anchor log ("genesis" for the county's first keys): the
    #: topic copy informs status and audit only; services trust the mounted, pinned file.
    countersigned_by: StrictStr | None = Field(default=None, max_length=200)


class Revocation(BaseModel):
    """``revoked/<id>@<version>``. Fail-closed: any non-null value revokes, even one that does not
    validate against this model (that is dead-lettered *and* applied)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    reason: StrictStr | None = Field(default=None, max_length=4000)
