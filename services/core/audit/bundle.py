"""Export the audit chain as a self-contained bundle an inspector can verify offline.

A bundle directory holds:

* ``events.jsonl``       one event per line, each line its canonical JSON (hash included)
* ``checkpoints.jsonl``  one signed checkpoint per line, canonical JSON
* ``manifest.json``      counts, seq range, head hash, SHA-256 of both files, public keys;
                         written as its own canonical bytes, so the file *is* what is signed
* ``manifest.sig``       base64 Ed25519 signature over ``manifest.json``

Because ``manifest.json`` is canonical, an inspector without this code can check it with
``base64 -d manifest.sig > sig.bin`` and
``openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile sig.bin``.

The embedded public key proves only that the bundle is intact, not who made it: anyone can
re-sign an altered bundle with a key of their own. Pass ``trusted_public_key``, or compare
``VerifyReport.signer_fingerprint`` with the fingerprint the hub publishes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Generator, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.audit.chain import (
    GENESIS_HASH,
    AuditEvent,
    Checkpoint,
    VerifyReport,
    verify_chain,
)
from services.core.audit.errors import AuditError
from services.core.crypto.canonical import canonical_bytes, format_utc

__all__ = ["BundleManifest", "export_bundle", "public_key_fingerprint", "verify_bundle"]

FORMAT = "s115hub/audit-bundle/v1"
EVENTS_FILE = "events.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
_BUNDLE_FILES = (EVENTS_FILE, CHECKPOINTS_FILE, MANIFEST_FILE, SIGNATURE_FILE)

# Stated in every manifest so an inspector has the recipe without access to our code.
_HASH_SCHEME = ("event.hash = hex SHA-256 of RFC 8785 (JCS) JSON of the event without 'hash'; "
                "datetimes as YYYY-MM-DDTHH:MM:SS.ffffffZ; genesis prev_hash = 64 zeros")
_CHECKPOINT_SCHEME = ("Ed25519 over RFC 8785 JSON of {context:'s115hub/audit-checkpoint/v1', "
                      "seq, head_hash, at, signer_key_id}; signature in base64")


class BundleManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str
    created_at: str
    key_id: str = Field(min_length=1)
    public_key_pem: str
    checkpoint_keys: dict[str, str] = Field(description="key id -> PEM, for every checkpoint.")
    event_count: int = Field(ge=0)
    checkpoint_count: int = Field(ge=0)
    first_seq: int | None
    last_seq: int | None
    anchor_prev_hash: str = Field(description="prev_hash of the first event: genesis unless the "
                                              "bundle is a segment of a longer chain.")
    head_hash: str | None
    files: dict[str, str] = Field(description="file name -> hex SHA-256.")
    hash_scheme: str
    checkpoint_scheme: str


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte key, for comparing keys read aloud or printed."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def _load_pem(pem: str) -> Ed25519PublicKey:
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        raise ValueError(f"unreadable public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("public key is not Ed25519")
    return key


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def export_bundle(events: Iterable[AuditEvent | Mapping[str, Any]],
                  checkpoints: Iterable[Checkpoint | Mapping[str, Any]],
                  signing_key: Ed25519PrivateKey, key_id: str, out_dir: str | Path, *,
                  checkpoint_keys: Mapping[str, Ed25519PublicKey] | None = None,
                  created_at: datetime | None = None) -> BundleManifest:
    """Write a signed bundle into ``out_dir`` (created if missing; must hold no bundle yet).

    Events are written as given, unverified: a bundle is evidence, and evidence of tampering
    must be exportable too. ``checkpoint_keys`` are the public keys of checkpoint signers other
    than ``signing_key``; without them the inspector could not verify those checkpoints offline.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clash = [n for n in _BUNDLE_FILES if (out / n).exists()]
    if clash:
        # Overwriting half of an existing bundle would leave files that no manifest describes.
        raise AuditError(f"{out} already holds {', '.join(clash)}; export into an empty directory")
    keys: dict[str, Ed25519PublicKey] = dict(checkpoint_keys or {})
    keys.setdefault(key_id, signing_key.public_key())

    cps = [c if isinstance(c, Checkpoint) else Checkpoint.model_validate(dict(c))
           for c in checkpoints]
    unknown = sorted({c.signer_key_id for c in cps} - keys.keys())
    if unknown:
        raise AuditError(f"no public key for checkpoint signer(s) {', '.join(unknown)}; "
                         "pass them as checkpoint_keys")

    count, first, last = 0, None, None
    with (out / EVENTS_FILE).open("wb") as f:
        for raw in events:
            ev = raw if isinstance(raw, AuditEvent) else AuditEvent.model_validate(dict(raw))
            f.write(canonical_bytes(ev) + b"\n")
            if first is None:
                first = ev
            last, count = ev, count + 1
    with (out / CHECKPOINTS_FILE).open("wb") as f:
        for cp in cps:
            f.write(canonical_bytes(cp) + b"\n")

    manifest = BundleManifest(
        format=FORMAT,
        created_at=format_utc(created_at or datetime.now(UTC)),
        key_id=key_id,
        public_key_pem=_pem(signing_key.public_key()),
        checkpoint_keys={kid: _pem(k) for kid, k in sorted(keys.items())
                         if kid in {c.signer_key_id for c in cps}},
        event_count=count, checkpoint_count=len(cps),
        first_seq=first.seq if first else None, last_seq=last.seq if last else None,
        anchor_prev_hash=first.prev_hash if first else GENESIS_HASH,
        head_hash=last.hash if last else None,
        files={n: _sha256_file(out / n) for n in (EVENTS_FILE, CHECKPOINTS_FILE)},
        hash_scheme=_HASH_SCHEME, checkpoint_scheme=_CHECKPOINT_SCHEME,
    )
    body = canonical_bytes(manifest)
    (out / MANIFEST_FILE).write_bytes(body)
    # The signature goes last: a bundle cut short by a crash never verifies.
    sig = base64.b64encode(signing_key.sign(body)).decode("ascii") + "\n"
    (out / SIGNATURE_FILE).write_text(sig, encoding="ascii")
    return manifest


def _fail(reason: str, **kw: Any) -> VerifyReport:
    return VerifyReport(ok=False, events_checked=kw.pop("events_checked", 0),
                        checkpoints_checked=kw.pop("checkpoints_checked", 0), reason=reason, **kw)


def _json_lines(path: Path) -> Generator[object, None, None]:
    # A line that is not JSON is passed on as text, so verify_chain reports it at its position.
    with path.open("rb") as f:
        for line in f:
            text = line.rstrip(b"\n")
            try:
                yield json.loads(text)
            except ValueError:
                yield text.decode("utf-8", "replace")


def verify_bundle(bundle_dir: str | Path,
                  trusted_public_key: Ed25519PublicKey | None = None) -> VerifyReport:
    """Check a bundle offline: manifest signature, file digests, then the chain itself.

    Never raises for a damaged or tampered bundle; the report says what is wrong.
    """
    d = Path(bundle_dir)
    missing = [n for n in _BUNDLE_FILES if not (d / n).is_file()]
    if missing:
        return _fail(f"bundle incomplete: missing {', '.join(missing)}")

    try:
        raw_manifest = json.loads((d / MANIFEST_FILE).read_bytes())
        manifest = BundleManifest.model_validate(raw_manifest)
        signed_key = _load_pem(manifest.public_key_pem)
        sig = base64.b64decode((d / SIGNATURE_FILE).read_text(encoding="ascii").strip(),
                               validate=True)
    except (ValueError, ValidationError, binascii.Error) as exc:
        return _fail(f"manifest unreadable: {exc}")
    if manifest.format != FORMAT:
        return _fail(f"unknown bundle format {manifest.format!r}")

    key = trusted_public_key or signed_key
    fingerprint = public_key_fingerprint(key)
    if trusted_public_key is not None and fingerprint != public_key_fingerprint(signed_key):
        return _fail("manifest names a different signing key than the trusted one "
                     f"({public_key_fingerprint(signed_key)})", signer_fingerprint=fingerprint)
    try:
        # Verify over the canonical form of what was parsed, so reformatting whitespace does not
        # matter but every value does.
        key.verify(sig, canonical_bytes(raw_manifest))
    except (InvalidSignature, TypeError, ValueError):
        return _fail("manifest signature does not verify: the manifest was altered or signed "
                     "by another key", signer_fingerprint=fingerprint)

    problems = [f"{n} differs from the manifest (sha256 mismatch)"
                for n in (EVENTS_FILE, CHECKPOINTS_FILE)
                if manifest.files.get(n) != _sha256_file(d / n)]
    if manifest.first_seq == 0 and manifest.anchor_prev_hash != GENESIS_HASH:
        problems.append("manifest starts at seq 0 but does not anchor on the genesis hash")
    try:
        keys = {kid: _load_pem(pem) for kid, pem in manifest.checkpoint_keys.items()}
    except ValueError as exc:
        return _fail(f"manifest checkpoint key: {exc}", signer_fingerprint=fingerprint)

    # Still run the chain after a digest mismatch: it pinpoints which event was touched.
    # Lines that are not JSON objects go through as they are: verify_chain reports them.
    lines = _json_lines(d / EVENTS_FILE)
    try:
        chain = verify_chain(
            cast(Iterator[Mapping[str, Any]], lines),
            cast(list[Mapping[str, Any]], list(_json_lines(d / CHECKPOINTS_FILE))),
            keys, start_seq=manifest.first_seq or 0, start_prev_hash=manifest.anchor_prev_hash)
    finally:
        lines.close()  # verification may stop early; don't leave the file to the GC
    if chain.ok:
        if chain.events_checked != manifest.event_count:
            problems.append(f"manifest lists {manifest.event_count} events, bundle has "
                            f"{chain.events_checked}")
        if chain.checkpoints_checked != manifest.checkpoint_count:
            problems.append(f"manifest lists {manifest.checkpoint_count} checkpoints, bundle has "
                            f"{chain.checkpoints_checked}")
        if chain.head_hash != manifest.head_hash:
            problems.append("chain head does not match the manifest's head_hash")
    else:
        problems.append(f"position {chain.first_bad_position}: {chain.reason}"
                        if chain.first_bad_position is not None else str(chain.reason))
    return chain.model_copy(update={
        "ok": not problems, "reason": "; ".join(problems) or None,
        "head_hash": chain.head_hash if not problems else None,
        "signer_fingerprint": fingerprint,
    })
