"""Partner API keys, stored only as hashes.

Keys are 256-bit random secrets, so a plain SHA-256 of the key is enough to store them (a slow
password hash protects guessable secrets; these are not guessable). Comparison is constant-time.

Revocation is live: ``s115hub partner revoke`` rewrites the file atomically (rename), and the
running ingest stats the file on every request and re-reads it when it changed, so the next
request with a revoked key gets 401. Several ingest replicas must share the state directory
(or have the file distributed to them); there is no other channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from services.core.errors import ConfigError

PREFIX = "s115"


@dataclass(frozen=True)
class Issued:
    partner: str
    key_id: str
    api_key: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class CredentialStore:
    """A JSON file: {key_id: {partner, sha256, created_at, revoked_at}}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cached: tuple[tuple[int, int, int, int], dict[str, dict[str, str | None]]] | None \
            = None

    def _read(self) -> dict[str, dict[str, str | None]]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._cached = None
            return {}
        # The rename in _write gives a new inode, so a rewrite within one mtime tick still shows.
        identity = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_dev)
        if self._cached is not None and self._cached[0] == identity:
            return self._cached[1]
        data = dict(json.loads(self.path.read_text(encoding="utf-8")))
        self._cached = (identity, data)
        return data

    def _write(self, data: dict[str, dict[str, str | None]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def add(self, partner: str) -> Issued:
        key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        data = dict(self._read())
        data[key_id] = {"partner": partner, "sha256": _digest(secret),
                        "created_at": datetime.now(UTC).isoformat(), "revoked_at": None}
        self._write(data)
        return Issued(partner, key_id, f"{PREFIX}_{key_id}_{secret}")

    def revoke(self, partner: str, key_id: str | None = None) -> list[str]:
        """Revoke one key, or every key of the partner; returns the key ids revoked."""
        data = {k: dict(v) for k, v in self._read().items()}
        hits = [k for k, v in data.items() if v["partner"] == partner and v["revoked_at"] is None
                and (key_id is None or k == key_id)]
        if not hits:
            raise ConfigError(f"no live key {key_id or ''} for partner {partner!r}")
        now = datetime.now(UTC).isoformat()
        for k in hits:
            data[k]["revoked_at"] = now
        self._write(data)
        return hits

    def authenticate(self, api_key: str) -> str | None:
        """The partner id the key belongs to, or None for an unknown, malformed or revoked key."""
        parts = api_key.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        entry = self._read().get(parts[1])
        if entry is None or entry["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(str(entry["sha256"]), _digest(parts[2])):
            return None
        return str(entry["partner"])

    def entries(self) -> dict[str, dict[str, str | None]]:
        return self._read()
