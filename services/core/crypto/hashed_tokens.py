"""Bearer tokens stored only as hashes, in one JSON file per kind of holder.

Used for partner API keys (services/ingest/credentials.py) and the router's per-group tokens, so
neither service imports the other's code. Tokens are 256-bit random secrets, so a
plain SHA-256 is enough to store them (a slow password hash protects guessable secrets; these are
not guessable), and the comparison is constant-time.

A token reads ``<prefix>_<token id>_<secret>``. The id finds the entry without scanning, and is
what an officer names to revoke one token; the holder (partner, group) is in the entry, never
taken from the token text.

Revocation is live: writes replace the file atomically (rename gives a new inode), and readers
stat the file on every check and re-read it when its identity changed, so the next request with
a revoked token is refused. Replicas must share the directory; there is no other channel.
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

from services.core.config.errors import ConfigError

Entries = dict[str, dict[str, str | None]]


@dataclass(frozen=True)
class IssuedToken:
    holder: str
    token_id: str
    token: str
    member: str | None = None


@dataclass(frozen=True)
class Bearer:
    """Who presented a token: the holder (partner, group), and for a group member's own token
    the member it was issued to."""
    holder: str
    token_id: str
    member: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class HashedTokenStore:
    """A JSON file: {token id: {holder, sha256, created_at, revoked_at}}."""

    def __init__(self, path: Path, prefix: str) -> None:
        if "_" in prefix or not prefix:
            raise ConfigError(f"token prefix {prefix!r} must be non-empty and without '_'")
        self.path = path
        self.prefix = prefix
        self._cached: tuple[tuple[int, int, int, int], Entries] | None = None

    def _read(self) -> Entries:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._cached = None
            return {}
        identity = (st.st_ino, st.st_mtime_ns, st.st_size, st.st_dev)
        if self._cached is not None and self._cached[0] == identity:
            return self._cached[1]
        try:
            data = dict(json.loads(self.path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"token file is not valid JSON: {exc}", file=str(self.path)) from exc
        self._cached = (identity, data)
        return data

    def _write(self, data: Entries) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def issue(self, holder: str, member: str | None = None) -> IssuedToken:
        """A new token for ``holder``; ``member`` names the person it is for (group members
        each get their own, so what they read is audited by name)."""
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        data = dict(self._read())
        entry: dict[str, str | None] = {
            "holder": holder, "sha256": _digest(secret),
            "created_at": datetime.now(UTC).isoformat(), "revoked_at": None}
        if member is not None:
            entry["member"] = member
        data[token_id] = entry
        self._write(data)
        return IssuedToken(holder, token_id, f"{self.prefix}_{token_id}_{secret}", member)

    def revoke(self, holder: str, token_id: str | None = None, *,
               member: str | None = None) -> list[str]:
        """Revoke one token, every live token of one member, or every live token of the
        holder; returns the ids revoked."""
        data = {k: dict(v) for k, v in self._read().items()}
        hits = [k for k, v in data.items() if v["holder"] == holder and v["revoked_at"] is None
                and (token_id is None or k == token_id)
                and (member is None or v.get("member") == member)]
        if not hits:
            which = (f"token {token_id}" if token_id else
                     f"token of member {member!r}" if member else "token")
            raise ConfigError(f"no live {which} for {holder!r}", file=str(self.path))
        now = datetime.now(UTC).isoformat()
        for k in hits:
            data[k]["revoked_at"] = now
        self._write(data)
        return hits

    def authenticate(self, token: str) -> str | None:
        """The holder the token belongs to, or None for an unknown, malformed or revoked one."""
        bearer = self.identify(token)
        return bearer.holder if bearer else None

    def identify(self, token: str) -> Bearer | None:
        """Holder, token id and member of a live token; None for an unknown, malformed or
        revoked one."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != self.prefix:
            return None
        entry = self._read().get(parts[1])
        if entry is None or entry["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(str(entry["sha256"]), _digest(parts[2])):
            return None
        member = entry.get("member")
        return Bearer(str(entry["holder"]), parts[1], str(member) if member else None)

    def entries(self) -> Entries:
        return self._read()
