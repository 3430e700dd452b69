"""The hub's master key, the sub-keys derived from it, and private key-file writing.

Operators provision exactly one secret. Every other key is either derived from it (HKDF, so nothing
extra to back up) or stored on disk wrapped under a derived key, so a copy of the state directory
without the master key reveals nothing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core.crypto.errors import CryptoError

KEY_BYTES = 32
# Labels are versioned so a future change of derivation can coexist with keys derived today.
KEK_INFO = b"s115hub/kek/v1"
KEYRING_INFO = b"s115hub/keyring/v1"


class MasterKey:
    """32 random bytes from which all other hub keys are derived; never printed or logged."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_BYTES:
            raise CryptoError(f"master key must be {KEY_BYTES} bytes, got {len(raw)}")
        self._raw = bytes(raw)

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"

    @classmethod
    def from_base64(cls, value: str, *, source: str = "master key") -> MasterKey:
        # The value itself never goes into a message: error text ends up in logs.
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(f"{source} is not valid base64") from None
        if len(raw) != KEY_BYTES:
            raise CryptoError(f"{source} must decode to {KEY_BYTES} bytes, got {len(raw)}")
        return cls(raw)

    @classmethod
    def from_file(cls, path: Path) -> MasterKey:
        try:
            text = Path(path).read_text(encoding="ascii")
        except FileNotFoundError:
            raise CryptoError(f"master key file {path} does not exist") from None
        except UnicodeDecodeError:
            raise CryptoError(f"master key file {path} is not valid base64") from None
        except OSError as exc:
            raise CryptoError(f"master key file {path} cannot be read: {exc.strerror}") from None
        return cls.from_base64(text, source=f"master key file {path}")

    @classmethod
    def from_env_or_file(cls, env_value: str | None, path: Path | None) -> MasterKey:
        """The environment value wins when set; a blank one counts as unset (compose files often
        pass ``VAR=`` through), so the file is used instead."""
        if env_value is not None and env_value.strip():
            return cls.from_base64(env_value, source="master key from the environment")
        if path is not None:
            return cls.from_file(path)
        raise CryptoError("no master key configured: set the environment value or a key file")

    @classmethod
    def generate_file(cls, path: Path) -> MasterKey:
        """Write a fresh random key (base64 text, mode 0600) and return it.

        Refuses to replace an existing file: every sealed record and pseudonym key depends on it.
        """
        key = cls(secrets.token_bytes(KEY_BYTES))
        if not write_private_file(Path(path), base64.b64encode(key._raw) + b"\n", overwrite=False):
            raise CryptoError(f"refusing to overwrite existing master key file {path}")
        return key

    def derive(self, info: bytes) -> bytes:
        """A 32-byte sub-key; ``info`` must be unique per purpose and versioned."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
        return hkdf.derive(self._raw)

    def kek(self) -> bytes:
        """Wraps the per-day data keys of :mod:`services.core.crypto.fields`."""
        return self.derive(KEK_INFO)

    def keyring_key(self) -> bytes:
        """Encrypts the pseudonym keyring of :mod:`services.core.crypto.keyring`."""
        return self.derive(KEYRING_INFO)


def write_private_file(path: Path, data: bytes, *, overwrite: bool) -> bool:
    """Publish ``data`` at ``path`` (mode 0600) so that readers see all of it or none of it.

    The data is written and fsynced to a temporary sibling first. With ``overwrite`` it is then
    renamed over ``path``; without, it is hard-linked, because a link fails if ``path`` exists
    whereas ``os.replace`` would silently clobber a concurrent creator. Returns False when another
    writer got there first. Temporary names are ``.<name>.<hex>.tmp`` so callers can find strays.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o600)  # the umask could only narrow it, but be exact
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        created = True
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                created = False
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS):
                    raise CryptoError(
                        f"the filesystem holding {path.parent} does not support hard links, "
                        "which key files need for safe creation by several processes") from None
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return created


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
