"""The hub's own Ed25519 key: signs audit checkpoints and exported bundles.

It is separate from the officers' protocol-signing keys (an officer vouches for a protocol; the
hub vouches only that its chain had a given head at a given time) and from the master key (which
derives symmetric keys and must never leave the hub). The private key is a PEM file, mode 0600;
its public half is written beside it as ``<file>.pub`` so an inspector can be given it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from services.core.crypto.errors import CryptoError
from services.core.crypto.keys import write_private_file


def audit_key_id(key: Ed25519PublicKey) -> str:
    """``hub-`` and the first 16 hex digits of SHA-256 of the raw public key."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "hub-" + hashlib.sha256(raw).hexdigest()[:16]


def public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


@dataclass(frozen=True)
class HubAuditKey:
    private: Ed25519PrivateKey
    key_id: str

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def __repr__(self) -> str:
        return f"HubAuditKey(key_id={self.key_id!r})"


def load_audit_key(path: Path) -> HubAuditKey:
    try:
        pem = Path(path).read_bytes()
    except FileNotFoundError:
        raise CryptoError(f"hub audit key {path} does not exist; run the bootstrap "
                          "(s115hub demo bootstrap) or set S115HUB_AUDIT_KEY_FILE") from None
    except OSError as exc:
        raise CryptoError(f"hub audit key {path} cannot be read: {exc.strerror}") from None
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"hub audit key {path} is not an unencrypted PEM key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CryptoError(f"hub audit key {path} is not an Ed25519 key")
    return HubAuditKey(key, audit_key_id(key.public_key()))


def ensure_audit_key(path: Path) -> HubAuditKey:
    """Load the key at ``path``, creating it (and its ``.pub``) first if it does not exist.

    Never replaces an existing key: checkpoints already signed would stop verifying against the
    published public key.
    """
    path = Path(path)
    if not path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_private_file(path, pem, overwrite=False)  # False: a concurrent creator won
    key = load_audit_key(path)
    pub = public_path(path)
    if not pub.exists():
        pub.write_bytes(key.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise CryptoError(f"public key {path} cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise CryptoError(f"public key {path} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CryptoError(f"public key {path} is not Ed25519")
    return key
