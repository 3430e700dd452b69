"""Per-protocol pseudonym (HMAC) keys, kept in epochs so a key can be rotated.

One key per protocol, so tokens released under two protocols cannot be joined by anyone holding
both releases. Rotation starts a new epoch: new records use it, while old epochs stay so that a
token issued earlier can still be explained to an officer.

The file is small and read far more often than written, so it is encrypted whole (AES-256-GCM
under the keyring key) and replaced atomically; readers need no lock. Writers serialise on an
flock'd sidecar ``<file>.lock`` and re-read under it, so two processes making epoch 1 of the same
protocol cannot end up with two different keys. Each process caches the decrypted file and
re-reads it when a ``stat`` shows another process replaced it, so a rotation is seen everywhere on
the next lookup of the current epoch.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.crypto.errors import CryptoError
from services.core.crypto.file_identity import FileIdentity, file_identity, stat_identity
from services.core.crypto.keys import KEY_BYTES, write_private_file

_AAD = b"s115hub/keyring/v1"
_NONCE_BYTES = 12



@dataclass(frozen=True)
class _Protocol:
    current: int
    keys: dict[int, bytes]


_State = dict[str, _Protocol]


class PseudonymKeyring:
    """Pseudonym keys by protocol id and epoch, in one encrypted file at ``path``.

    Constructing one decrypts an existing file straight away, so a wrong master key stops a
    service at start-up.
    """

    def __init__(self, path: Path, keyring_key: bytes) -> None:
        if len(keyring_key) != KEY_BYTES:
            raise CryptoError(f"keyring key must be {KEY_BYTES} bytes, got {len(keyring_key)}")
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")
        self._aead = AESGCM(keyring_key)
        self._write_lock = threading.Lock()  # flock does not exclude threads sharing a process
        # Swapped whole, so a reader never pairs one file's identity with another file's state.
        self._snapshot: tuple[FileIdentity | None, _State] = (None, {})
        self._fresh()

    def key_for(self, protocol_id: str, epoch: int | None = None) -> tuple[int, bytes]:
        """``(epoch, key)``: the current epoch when ``epoch`` is None (creating epoch 1 on first
        use), else that epoch, which must exist."""
        _check_protocol_id(protocol_id)
        if epoch is None:
            current = self._fresh().get(protocol_id) or self._update(protocol_id, rotate=False)
            return current.current, current.keys[current.current]
        # Past epochs never change, so the cached state answers unless it predates the epoch.
        entry = self._snapshot[1].get(protocol_id)
        if entry is None or epoch not in entry.keys:
            entry = self._fresh().get(protocol_id)
        if entry is None or epoch not in entry.keys:
            raise CryptoError(f"no pseudonym key for protocol {protocol_id!r} epoch {epoch}")
        return epoch, entry.keys[epoch]

    def rotate(self, protocol_id: str) -> int:
        """Start a new epoch for ``protocol_id`` (epoch 1 if it had none); return its number."""
        _check_protocol_id(protocol_id)
        return self._update(protocol_id, rotate=True).current

    def shred(self, protocol_id: str, before_epoch: int) -> list[int]:
        """Destroy the keys of ``protocol_id``'s epochs below ``before_epoch``; return them.

        Tokens of a shredded epoch can then never be recomputed or linked to new ones, which is
        how pseudonymised data past its retention is made unlinkable for good. The current epoch
        is never shredded (depersonalise is using it): rotate first.
        """
        _check_protocol_id(protocol_id)
        with self._write_lock, _flock(self._lock_path):
            _, state = self._read()
            entry = state.get(protocol_id)
            if entry is None:
                raise CryptoError(f"no pseudonym keys for protocol {protocol_id!r}")
            if before_epoch > entry.current:
                raise CryptoError(f"epoch {entry.current} of {protocol_id!r} is current and "
                                  "cannot be shredded; run `s115hub keys rotate` first")
            gone = sorted(e for e in entry.keys if e < before_epoch)
            if gone:
                keys = {e: k for e, k in entry.keys.items() if e >= before_epoch}
                state = {**state, protocol_id: _Protocol(entry.current, keys)}
                self._write(state)
            self._snapshot = (file_identity(self._path), state)
            return gone

    def epochs(self, protocol_id: str) -> list[int]:
        """Epochs that exist for ``protocol_id``, oldest first; empty (nothing created) if none."""
        entry = self._fresh().get(protocol_id)
        return sorted(entry.keys) if entry is not None else []

    def protocols(self) -> dict[str, int]:
        """Protocol id -> current epoch, for every protocol that has a key."""
        return {pid: p.current for pid, p in sorted(self._fresh().items())}

    # -- file handling --------------------------------------------------------------------------

    def _fresh(self) -> _State:
        identity, state = self._snapshot
        if identity is not None and file_identity(self._path) == identity:
            return state
        self._snapshot = self._read()
        return self._snapshot[1]

    def _update(self, protocol_id: str, *, rotate: bool) -> _Protocol:
        with self._write_lock, _flock(self._lock_path):
            _, state = self._read()  # under the lock: another process may have written since
            entry = state.get(protocol_id)
            if entry is None or rotate:
                epoch = max(entry.keys) + 1 if entry is not None else 1
                keys = {**(entry.keys if entry is not None else {}), epoch: os.urandom(KEY_BYTES)}
                entry = _Protocol(epoch, keys)
                state = {**state, protocol_id: entry}
                self._write(state)
            self._snapshot = (file_identity(self._path), state)
            return entry

    def _read(self) -> tuple[FileIdentity | None, _State]:
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except FileNotFoundError:
            return None, {}
        with os.fdopen(fd, "rb") as fh:
            identity = stat_identity(os.fstat(fh.fileno()))
            raw = fh.read()
        try:
            envelope = json.loads(raw)
            if envelope["v"] != 1:
                raise ValueError("version")
            nonce, ct = _unb64(envelope["nonce"]), _unb64(envelope["ct"])
        except (ValueError, KeyError, TypeError):
            raise CryptoError(f"pseudonym keyring {self._path} is corrupt") from None
        try:
            plain = self._aead.decrypt(nonce, ct, _AAD)
        except InvalidTag:
            raise CryptoError(
                f"cannot decrypt pseudonym keyring {self._path}: wrong master key, or the file "
                "was altered") from None
        return identity, _parse_state(plain, self._path)

    def _write(self, state: _State) -> None:
        doc = {pid: {"current": p.current, "keys": {str(e): _b64(k) for e, k in p.keys.items()}}
               for pid, p in state.items()}
        plain = json.dumps(doc, sort_keys=True).encode()
        nonce = os.urandom(_NONCE_BYTES)
        envelope = {"v": 1, "alg": "A256GCM", "nonce": _b64(nonce),
                    "ct": _b64(self._aead.encrypt(nonce, plain, _AAD))}
        write_private_file(self._path, json.dumps(envelope).encode(), overwrite=True)


def _parse_state(plain: bytes, path: Path) -> _State:
    try:
        doc: Any = json.loads(plain)
        state: _State = {}
        for pid, entry in doc.items():
            keys = {int(e): _unb64(k) for e, k in entry["keys"].items()}
            current = entry["current"]
            if not isinstance(current, int) or current not in keys:
                raise ValueError("current epoch has no key")
            if any(len(k) != KEY_BYTES for k in keys.values()):
                raise ValueError("key length")
            state[pid] = _Protocol(current, keys)
        return state
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CryptoError(f"pseudonym keyring {path} is corrupt") from None


@contextmanager
def _flock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_protocol_id(protocol_id: str) -> None:
    if not isinstance(protocol_id, str) or not protocol_id:
        raise CryptoError(f"protocol id must be a non-empty string, got {protocol_id!r}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None

