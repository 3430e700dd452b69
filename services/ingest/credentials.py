"""Partner API keys, stored only as hashes.

The storage, live revocation and constant-time check are the shared ``HashedTokenStore``
(services/core/crypto/hashed_tokens.py), also used for the router's group tokens; this module only
names the holder a partner. Several ingest replicas must share the state directory (or have the file
distributed to them); there is no other channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.core.config.errors import ConfigError
from services.core.crypto.hashed_tokens import Entries, HashedTokenStore

PREFIX = "s115"


@dataclass(frozen=True)
class Issued:
    partner: str
    key_id: str
    api_key: str


class CredentialStore:
    """A JSON file: {key_id: {holder (the partner id), sha256, created_at, revoked_at}}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = HashedTokenStore(path, PREFIX)

    def add(self, partner: str) -> Issued:
        t = self._store.issue(partner)
        return Issued(partner, t.token_id, t.token)

    def revoke(self, partner: str, key_id: str | None = None) -> list[str]:
        """Revoke one key, or every key of the partner; returns the key ids revoked."""
        try:
            return self._store.revoke(partner, key_id)
        except ConfigError:
            raise ConfigError(f"no live key {key_id or ''} for partner {partner!r}",
                              file=str(self.path)) from None

    def authenticate(self, api_key: str) -> str | None:
        """The partner id the key belongs to, or None for an unknown, malformed or revoked key."""
        return self._store.authenticate(api_key)

    def entries(self) -> Entries:
        return self._store.entries()
