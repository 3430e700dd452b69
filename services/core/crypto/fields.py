"""Envelope encryption of personal fields at rest, with one data key per UTC day.

Why per day: retention is by day, and Kafka topics, replicas and backups cannot be reliably purged
of individual records. Destroying one small key file instead makes that day's personal fields
unreadable everywhere at once (crypto-shredding).

Data keys are stored wrapped under the KEK in ``<dir>/datakeys/YYYY-MM-DD.key`` so that ingest
(sealing) and depersonalise (opening) share them through the filesystem, with no key service:

* creation publishes a fully written file with a hard link, so readers never see half a key and
  two processes creating the same day's key both end up using whichever file landed first;
* unwrapped keys are cached per process, but every call stats the key file and drops the cached
  key when the file is gone or is a different file. A shred by any process therefore takes effect
  in every process on its next call (a call already past the check may still finish);
* ``shred_before`` first records a watermark (``<dir>/datakeys/shredded-before``) so a late
  record for a shredded day is refused instead of silently creating a new key for that day.

Limits: overwriting before unlinking is best effort on SSDs and copy-on-write filesystems. The
real guarantee is that key files only ever hold keys wrapped under the KEK, so a copy of the
datakeys directory is harmless once the originals are gone, provided the master key is not
backed up alongside it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.crypto.errors import CryptoError
from services.core.crypto.file_identity import FileIdentity, file_identity, stat_identity
from services.core.crypto.keys import KEY_BYTES, fsync_dir, write_private_file

NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_ID = re.compile(r"dk-(\d{4}-\d{2}-\d{2})")
_KEY_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.key")
# Temporary files left by a creator that crashed between write and link hold a wrapped key too,
# so shredding must find them by day.
_TMP_FILE = re.compile(r"\.(\d{4}-\d{2}-\d{2})\.key\.[0-9a-f]+\.tmp")
_WATERMARK = "shredded-before"



class DataKeyShredded(CryptoError):
    """The day's data key no longer exists: its records are past retention, not tampered with."""


def key_id_for(day: date) -> str:
    return f"dk-{_utc_day(day).isoformat()}"


@dataclass(frozen=True)
class _DataKey:
    identity: FileIdentity
    aead: AESGCM
    fingerprint: str


class DataKeyStore:
    """Per-day AES-256 data keys, wrapped under ``kek`` in ``<directory>/datakeys``."""

    def __init__(self, directory: Path, kek: bytes) -> None:
        if len(kek) != KEY_BYTES:
            raise CryptoError(f"key-encryption key must be {KEY_BYTES} bytes, got {len(kek)}")
        self._dir = Path(directory) / "datakeys"
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._kek = AESGCM(kek)
        self._cache: dict[str, _DataKey] = {}
        self._check_kek()

    # -- public API ---------------------------------------------------------------------------

    def seal(self, fields: dict[str, Any], record_id: str, day: date) -> dict[str, Any]:
        """Encrypt ``fields`` for ``record_id`` under ``day``'s data key, creating it if needed.

        Dates and times become ISO strings, UUIDs and Decimals plain strings; ``open_sealed``
        returns them as such. Raises :class:`DataKeyShredded` for a day already shredded.
        """
        day = _utc_day(day)
        key_id = key_id_for(day)
        key = self._data_key(day, create=True)
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: safe far beyond a day's records
        ct = key.aead.encrypt(nonce, _canonical(fields), _aad(key_id, record_id))
        return {"v": 1, "key_id": key_id, "nonce": _b64(nonce), "ct": _b64(ct)}

    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]:
        """Decrypt what :meth:`seal` produced for the same ``record_id``.

        Raises :class:`DataKeyShredded` if the day's key is gone, :class:`CryptoError` if the blob
        is malformed, was altered, or was sealed for another record.
        """
        key_id, day, nonce, ct = _parse_sealed(sealed)
        key = self._data_key(day, create=False)
        try:
            plain = key.aead.decrypt(nonce, ct, _aad(key_id, record_id))
        except InvalidTag:
            raise CryptoError(
                f"sealed fields of record {record_id!r} failed authentication: altered, or "
                "sealed for a different record") from None
        fields = json.loads(plain)
        if not isinstance(fields, dict):
            raise CryptoError(f"sealed fields of record {record_id!r} are not an object")
        return fields

    def shred_before(self, day: date) -> list[str]:
        """Destroy data keys of days strictly before ``day``; return their ids, oldest first."""
        cutoff = _utc_day(day)
        self._raise_watermark(cutoff)
        shredded: list[str] = []
        for entry in sorted(os.listdir(self._dir)):
            key_match = _KEY_FILE.fullmatch(entry)
            match = key_match or _TMP_FILE.fullmatch(entry)
            if match is None or _parse_day(match.group(1)) >= cutoff:
                continue
            if _shred_file(self._dir / entry) and key_match is not None:
                shredded.append(f"dk-{match.group(1)}")
        fsync_dir(self._dir)
        for key_id in list(self._cache):
            if _parse_day(key_id[3:]) < cutoff:
                del self._cache[key_id]
        return shredded

    def key_ids(self) -> list[str]:
        """Ids of the data keys that currently exist, oldest first."""
        return sorted(f"dk-{m.group(1)}" for name in os.listdir(self._dir)
                      if (m := _KEY_FILE.fullmatch(name)))

    def fingerprint(self, key_id: str) -> str:
        """A short, non-secret digest identifying an existing data key (for audit and tests)."""
        match = _KEY_ID.fullmatch(key_id)
        if match is None:
            raise CryptoError(f"not a data key id: {key_id!r}")
        return self._data_key(_parse_day(match.group(1)), create=False).fingerprint

    # -- key files ----------------------------------------------------------------------------

    def _path(self, day: date) -> Path:
        return self._dir / f"{day.isoformat()}.key"

    def _data_key(self, day: date, *, create: bool) -> _DataKey:
        key_id = key_id_for(day)
        path = self._path(day)
        identity = file_identity(path)
        if identity is None and create:
            self._create(day, key_id, path)
            identity = file_identity(path)
        if identity is None:
            self._cache.pop(key_id, None)
            raise DataKeyShredded(f"data key {key_id} has been shredded")
        cached = self._cache.get(key_id)
        if cached is not None and cached.identity == identity:
            return cached
        loaded = self._load(key_id, path)
        self._cache[key_id] = loaded
        return loaded

    def _create(self, day: date, key_id: str, path: Path) -> None:
        watermark = self._watermark()
        if watermark is not None and day < watermark:
            raise DataKeyShredded(
                f"data key {key_id} has been shredded: records for {day} are past retention")
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        doc = {"v": 1, "key_id": key_id, "alg": "A256GCM-wrap", "nonce": _b64(nonce),
               "wrapped": _b64(self._kek.encrypt(nonce, key, _wrap_aad(key_id)))}
        # Losing the race is fine: the caller re-reads the file and uses the winner's key.
        write_private_file(path, json.dumps(doc).encode(), overwrite=False)

    def _load(self, key_id: str, path: Path) -> _DataKey:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise DataKeyShredded(f"data key {key_id} has been shredded") from None
        with os.fdopen(fd, "rb") as fh:
            identity = stat_identity(os.fstat(fh.fileno()))
            raw = fh.read()
        if not raw.strip(b"\0"):
            # Zeroed or empty: a shred is in progress in another process.
            raise DataKeyShredded(f"data key {key_id} has been shredded")
        try:
            doc = json.loads(raw)
            if doc["v"] != 1 or doc["key_id"] != key_id:
                raise ValueError(key_id)
            key = self._kek.decrypt(_unb64(doc["nonce"]), _unb64(doc["wrapped"]),
                                    _wrap_aad(key_id))
        except InvalidTag:
            raise CryptoError(
                f"data key {key_id} cannot be unwrapped: wrong master key, or the key file was "
                "altered") from None
        except (ValueError, KeyError, TypeError, CryptoError):
            raise CryptoError(f"data key file {path} is corrupt") from None
        return _DataKey(identity, AESGCM(key), _fingerprint(key))

    def _check_kek(self) -> None:
        # A wrong master key should stop the service at start-up, not dead-letter every record.
        for key_id in reversed(self.key_ids()):
            with contextlib.suppress(DataKeyShredded):
                self._data_key(_parse_day(key_id[3:]), create=False)
                return

    def _watermark(self) -> date | None:
        try:
            return _parse_day((self._dir / _WATERMARK).read_text(encoding="ascii").strip())
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, CryptoError):
            raise CryptoError(f"{self._dir / _WATERMARK} is corrupt") from None

    def _raise_watermark(self, cutoff: date) -> None:
        # Never lowered: a shred with an earlier cutoff must not re-open shredded days. Two
        # concurrent shreds may race here; the next shred run restores the higher mark.
        current = self._watermark()
        if current is None or cutoff > current:
            write_private_file(self._dir / _WATERMARK, f"{cutoff.isoformat()}\n".encode(),
                               overwrite=True)


# -- helpers -----------------------------------------------------------------------------------

def _utc_day(day: date) -> date:
    if isinstance(day, datetime):
        # A naive datetime's day depends on the host's zone; make the caller decide.
        if day.tzinfo is None or day.utcoffset() is None:
            raise TypeError("pass a UTC date or a timezone-aware datetime, not a naive datetime")
        return day.astimezone(UTC).date()
    return day


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CryptoError(f"not a date: {text!r}") from None


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_json_default).encode("utf-8")


def _json_default(value: object) -> str:
    if isinstance(value, (date, time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    # str() of bytes or arbitrary objects would seal garbage that cannot be told from data.
    raise TypeError(f"personal field value of type {type(value).__name__} is not JSON-able")


def _aad(key_id: str, record_id: str) -> bytes:
    # A JSON array is unambiguous whatever characters the record id contains.
    return json.dumps(["s115hub/field/v1", key_id, record_id]).encode()


def _wrap_aad(key_id: str) -> bytes:
    # Binds a wrapped key to its day, so a key file renamed to another day fails to unwrap.
    return f"s115hub/datakey/v1/{key_id}".encode()


def _fingerprint(key: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"s115hub/datakey-fingerprint/v1")
    digest.update(key)
    return digest.finalize()[:8].hex()


def _parse_sealed(sealed: Any) -> tuple[str, date, bytes, bytes]:
    if not isinstance(sealed, dict) or sealed.get("v") != 1:
        raise CryptoError("sealed fields are malformed or of an unknown version")
    key_id = sealed.get("key_id")
    match = _KEY_ID.fullmatch(key_id) if isinstance(key_id, str) else None
    if match is None or not isinstance(key_id, str):
        raise CryptoError(f"sealed fields name an invalid data key id: {key_id!r}")
    nonce, ct = _unb64(sealed.get("nonce")), _unb64(sealed.get("ct"))
    if len(nonce) != NONCE_BYTES or len(ct) < _TAG_BYTES:
        raise CryptoError("sealed fields have a nonce or ciphertext of the wrong length")
    return key_id, _parse_day(match.group(1)), nonce, ct


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CryptoError("expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("not valid base64") from None



def _shred_file(path: Path) -> bool:
    """Overwrite with zeros, fsync, unlink. False if another process shredded it first."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        remaining = os.fstat(fd).st_size
        zeros = b"\0" * 4096
        while remaining > 0:
            remaining -= os.write(fd, zeros[:remaining])
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
