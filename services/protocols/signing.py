"""Officer signatures on protocols (Ed25519).

Each party's designated officer signs the protocol's digest: the canonical JSON of the whole
document *except* the signatures. Any change to any other byte of meaning (a field rule, a date,
a recipient) changes the digest and voids every signature, so an edited protocol is dead until
every party signs again.

The signed message also carries the party, officer and key id (domain-separated), so a signature
cannot be relabelled to another officer or reused for a different purpose.

Key ids are the first 16 hex digits of SHA-256 of the raw 32-byte public key; the hub's registry
of officer keys maps key id -> (party, public key), and a signature only counts for the party the
registry assigns its key to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.core.crypto.canonical import canonical_bytes
from services.core.crypto.errors import CryptoError
from services.core.crypto.keys import write_private_file
from services.core.errors import ProtocolError
from services.protocols.protocol import Protocol, Signature

#: key_id -> (party, public key)
OfficerKeys = Mapping[str, tuple[str, Ed25519PublicKey]]

_DOMAIN = "s115hub/protocol-signature/v1"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_officer_key() -> tuple[bytes, bytes, str]:
    """A new key pair as (private PEM, public PEM, key id). The private PEM is unencrypted:
    store it with :func:`save_private_key` (mode 0600) or in the officer's own key store."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = _public_pem(private.public_key())
    return private_pem, public_pem, key_id_of(private.public_key())


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        # The PEM itself never goes into the message: it is a secret.
        raise CryptoError(f"not an unencrypted PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CryptoError("officer keys must be Ed25519")
    return key


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise CryptoError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CryptoError("officer keys must be Ed25519")
    return key


def save_private_key(path: Path, private_pem: bytes, *, overwrite: bool = False) -> None:
    """Write a private key with mode 0600; refuses to replace an existing key unless told."""
    private_key_from_pem(private_pem)  # never write something we could not read back
    if not write_private_file(Path(path), private_pem, overwrite=overwrite):
        raise CryptoError(f"{path} already exists; not overwriting an officer key")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise CryptoError(f"cannot read officer key {path}: {exc.strerror}") from None
    return private_key_from_pem(pem)


def save_public_key(path: Path, public_pem: bytes) -> None:
    public_key_from_pem(public_pem)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(public_pem)


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise CryptoError(f"cannot read public key {path}: {exc.strerror}") from None
    return public_key_from_pem(pem)


def officer_keys_from(entries: Mapping[str, bytes | list[bytes]]
                      ) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """Build the registry from party -> public PEM (or list of PEMs: several officers)."""
    registry: dict[str, tuple[str, Ed25519PublicKey]] = {}
    for party, pems in entries.items():
        for pem in [pems] if isinstance(pems, bytes) else pems:
            key = public_key_from_pem(pem)
            kid = key_id_of(key)
            if kid in registry and registry[kid][0] != party:
                # One key serving two parties would let one officer sign for both.
                raise CryptoError(f"key {kid} is registered for both {registry[kid][0]} "
                                  f"and {party}")
            registry[kid] = (party, key)
    return registry


def load_officer_keys(directory: Path) -> dict[str, tuple[str, Ed25519PublicKey]]:
    """Read ``<directory>/<party>/*.pub.pem`` into the key registry."""
    entries: dict[str, list[bytes]] = {}
    for pem_path in sorted(Path(directory).glob("*/*.pub.pem")):
        entries.setdefault(pem_path.parent.name, []).append(pem_path.read_bytes())
    return officer_keys_from(entries)


def protocol_digest(protocol: Protocol) -> bytes:
    """The canonical bytes every signature covers: the document without its signatures, and the
    SHA-256 of every shipped word list or tag set its free-text rules name (so an edited list
    voids the signature exactly as an edited rule does). A protocol that names no list has the
    digest it always had."""
    doc = protocol.model_dump(mode="json", exclude={"signatures"})
    for optional in ("hold_hours", "allowed_lateness_hours"):
        if doc.get(optional) is None:
            # Added later, unset by default: protocols signed before it keep their digest.
            doc.pop(optional, None)
    lists = protocol.list_hashes()
    if lists:
        doc["free_text_lists_sha256"] = lists
    return canonical_bytes(doc)


def _message(protocol: Protocol, party: str, officer: str, key_id: str) -> bytes:
    return canonical_bytes({
        "domain": _DOMAIN,
        "protocol_sha256": hashlib.sha256(protocol_digest(protocol)).hexdigest(),
        "party": party,
        "officer": officer,
        "key_id": key_id,
    })


def sign_protocol(protocol: Protocol, private_key: Ed25519PrivateKey | bytes, party: str,
                  officer: str) -> Protocol:
    """A copy of ``protocol`` with ``party``'s signature added (replacing any earlier one)."""
    if party not in protocol.parties:
        raise ProtocolError(f"{party} is not a party to {protocol.ref}")
    key = private_key_from_pem(private_key) if isinstance(private_key, bytes) else private_key
    kid = key_id_of(key.public_key())
    sig = key.sign(_message(protocol, party, officer, kid))
    signature = Signature(party=party, officer=officer, key_id=kid,
                          signature=base64.b64encode(sig).decode("ascii"))
    others = [s for s in protocol.signatures if s.party != party]
    # model_copy skips validation; the new signature was built by a validating constructor and
    # replacing by party keeps the one-signature-per-party rule.
    return protocol.model_copy(update={"signatures": [*others, signature]})


def verify_signatures(protocol: Protocol, officer_keys: OfficerKeys) -> list[str]:
    """Every reason the protocol is not validly signed by all its parties; [] means it is."""
    return _check(protocol, officer_keys)[1]


def valid_signers(protocol: Protocol, officer_keys: OfficerKeys) -> set[str]:
    """Parties whose signature on this exact document verifies."""
    return _check(protocol, officer_keys)[0]


def _check(protocol: Protocol, officer_keys: OfficerKeys) -> tuple[set[str], list[str]]:
    problems: list[str] = []
    valid: set[str] = set()
    for sig in protocol.signatures:
        entry = officer_keys.get(sig.key_id)
        if sig.party not in protocol.parties:
            problems.append(f"signature by {sig.party}, who is not a party")
            continue
        if entry is None:
            problems.append(f"signature invalid for {sig.party}: unknown key {sig.key_id}")
            continue
        owner, public_key = entry
        if owner != sig.party:
            # Otherwise one party's officer could sign on behalf of another.
            problems.append(f"signature invalid for {sig.party}: key {sig.key_id} belongs to "
                            f"{owner}")
            continue
        if key_id_of(public_key) != sig.key_id:
            problems.append(f"signature invalid for {sig.party}: registry key id mismatch")
            continue
        try:
            raw = base64.b64decode(sig.signature, validate=True)
            public_key.verify(raw, _message(protocol, sig.party, sig.officer, sig.key_id))
        except (InvalidSignature, binascii.Error, ValueError):
            problems.append(f"signature invalid for {sig.party}")
            continue
        valid.add(sig.party)
    signed = {s.party for s in protocol.signatures}
    problems.extend(f"unsigned by {party}" for party in protocol.parties if party not in signed)
    return valid, problems
