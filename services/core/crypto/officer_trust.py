"""Officer trust anchors: which officer keys may sign protocols, decided outside the config topic.

Why: a protocol is live when every party's officer has signed it, and the services used to learn
the officers' public keys from ``s115.config`` — the same topic that carries the protocols. Whoever
could write that topic could publish a key of their own and sign anything with it. So the keys a
protocol signature may verify against are *pinned*:

* The deployment mounts an **anchor file** (``S115HUB_OFFICER_KEYS_FILE``, default
  ``<state_dir>/officer-keys.yaml``): an ordered log of key changes. The services never take a key
  from the topic; a key that arrived only on the topic verifies nothing.
* The county configuration the officers approve carries the file's fingerprint
  (``officer_keys_sha256``: SHA-256 of the canonical JSON of the log, so comments and layout do not
  matter). A file that does not match the county trusts no key at all (fail closed: nothing is
  released), so changing the mounted file alone changes nothing, and changing the county alone
  changes nothing either.
* The first entries (the *genesis* block, written when the partnership is set up) need no
  countersignature: the county fingerprint is their approval. **Every later change** — a new key,
  a replacement, a removal — must be countersigned by a key, trusted at that point of the log,
  that belongs to **another party's** officer. An operator who can edit the file cannot add a key
  without an officer of another agency; one agency's officer cannot add keys for itself alone.
* Each countersignature covers the entry and the hash of every entry before it, so the log cannot
  be reordered or have entries cut out of its middle without voiding the signatures after.

``s115hub config apply`` publishes the anchor log's keys to the topic as ``officer/<key id>``
messages so every change is an audit fact (``officer.added`` / ``officer.removed``, naming who
countersigned). Pure logic: no Kafka, no files (the loader is the one function that reads one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.config.errors import ConfigError
from services.core.crypto.canonical import canonical_bytes

FORMAT = "s115hub/officer-keys/v1"
_DOMAIN = "s115hub/officer-key-change/v1"
HEX64 = r"^[0-9a-f]{64}$"

#: key_id -> (party, public key): the shape protocol signature checks take.
TrustedKeys = dict[str, tuple[str, Ed25519PublicKey]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Countersignature(_Strict):
    party: str = Field(min_length=1)
    officer: str = Field(min_length=1)
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(min_length=1)


class KeyChange(_Strict):
    """One entry of the log. ``add`` brings a key in (``replaces`` retires one of the same party's
    keys at the same time); ``remove`` retires ``key_id``."""

    action: Literal["add", "remove"] = "add"
    party: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    officer: str = Field(min_length=1, max_length=200)
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    #: Base64 of the raw 32-byte Ed25519 public key (``add`` only).
    public_key: str | None = None
    replaces: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    countersignature: Countersignature | None = None

    def body(self) -> dict[str, Any]:
        """What a countersignature covers: everything but the countersignature."""
        return self.model_dump(mode="json", exclude={"countersignature"})


class AnchorLog(_Strict):
    """``genesis``: the first set, approved by the county fingerprint alone (adds only, no
    countersignatures). ``changes``: everything after, each countersigned by another party."""

    format: Literal["s115hub/officer-keys/v1"] = "s115hub/officer-keys/v1"
    genesis: list[KeyChange] = Field(default_factory=list)
    changes: list[KeyChange] = Field(default_factory=list)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw key (the same ids protocol signatures carry)."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(log: AnchorLog) -> str:
    """The value the county's ``officer_keys_sha256`` must hold for this log to be trusted."""
    return hashlib.sha256(canonical_bytes(log.model_dump(mode="json"))).hexdigest()


def change_message(log: AnchorLog, index: int) -> bytes:
    """The bytes a countersignature on change ``index`` signs: the change, its position and the
    hash of the genesis set and every change before it (domain-separated from protocol
    signatures)."""
    prefix = log.model_copy(update={"changes": log.changes[:index]})
    return canonical_bytes({"domain": _DOMAIN, "seq": index, "prev_sha256": fingerprint(prefix),
                            "change": log.changes[index].body()})


@dataclass
class TrustResult:
    keys: TrustedKeys = field(default_factory=dict)
    #: Why keys or entries were not trusted, in words an officer can act on.
    problems: list[str] = field(default_factory=list)
    #: key id -> (party, officer, countersigned by "officer@party" or "genesis"), for audit/status.
    provenance: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def public_key_of(change: KeyChange) -> Ed25519PublicKey:
    if change.public_key is None:
        raise ConfigError(f"key {change.key_id}: an added key needs public_key",
                          field="public_key")
    try:
        raw = base64.b64decode(change.public_key, validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"key {change.key_id}: public_key is not a base64 Ed25519 key ({exc})",
                          field="public_key") from None
    if key_id_of(key) != change.key_id:
        raise ConfigError(f"key {change.key_id}: key_id does not match public_key",
                          field="key_id")
    return key


def replay(log: AnchorLog) -> TrustResult:
    """Walk the log and return the keys it trusts at its end. The fingerprint is not checked here
    (see :func:`trusted_keys`)."""
    out = TrustResult()
    for i, change in enumerate(log.genesis):
        where = f"genesis entry {i + 1} ({change.key_id} for {change.party})"
        if change.action != "add" or change.replaces or change.countersignature:
            out.problems.append(f"{where}: ignored, the first set only adds keys, uncountersigned")
            continue
        problem = _apply(change, out, "genesis")
        if problem:
            out.problems.append(f"{where}: ignored, {problem}")
    for i, change in enumerate(log.changes):
        where = f"change {i + 1} ({change.action} {change.key_id} for {change.party})"
        if change.countersignature is None:
            out.problems.append(f"{where}: ignored until another party's officer countersigns")
            continue
        problem = _countersignature_problem(log, i, out.keys)
        if problem:
            out.problems.append(f"{where}: ignored, {problem}")
            continue
        cs = change.countersignature
        problem = _apply(change, out, f"{cs.officer}@{cs.party}")
        if problem:
            out.problems.append(f"{where}: ignored, {problem}")
    return out


def _countersignature_problem(log: AnchorLog, index: int, keys: TrustedKeys) -> str | None:
    change = log.changes[index]
    cs = change.countersignature
    assert cs is not None
    if cs.party == change.party:
        return (f"countersigned by {cs.party}, the same party; another party's officer must "
                "countersign")
    entry = keys.get(cs.key_id)
    if entry is None:
        return f"countersigning key {cs.key_id} is not trusted at this point of the log"
    owner, public_key = entry
    if owner != cs.party:
        return f"countersigning key {cs.key_id} belongs to {owner}, not {cs.party}"
    try:
        public_key.verify(base64.b64decode(cs.signature, validate=True),
                          change_message(log, index))
    except (InvalidSignature, binascii.Error, ValueError):
        return f"countersignature by {cs.officer}@{cs.party} does not verify"
    return None


def _apply(change: KeyChange, out: TrustResult, signer: str) -> str | None:
    if change.action == "remove":
        entry = out.keys.get(change.key_id)
        if entry is None or entry[0] != change.party:
            return f"{change.party} has no trusted key {change.key_id} to remove"
        del out.keys[change.key_id]
        out.provenance.pop(change.key_id, None)
        return None
    try:
        key = public_key_of(change)
    except ConfigError as exc:
        return str(exc)
    holder = out.keys.get(change.key_id)
    if holder is not None and holder[0] != change.party:
        # One key serving two parties would let one officer sign for both.
        return f"key already belongs to {holder[0]}"
    if change.replaces:
        old = out.keys.get(change.replaces)
        if old is None or old[0] != change.party:
            return f"{change.party} has no trusted key {change.replaces} to replace"
        del out.keys[change.replaces]
        out.provenance.pop(change.replaces, None)
    out.keys[change.key_id] = (change.party, key)
    out.provenance[change.key_id] = (change.party, change.officer, signer)
    return None


def trusted_keys(log: AnchorLog | None, expected_sha256: str | None, *,
                 missing: str = "no officer key file is mounted") -> TrustResult:
    """The officer keys protocol signatures may verify against: the log's keys if, and only if,
    its fingerprint is the one the approved county configuration pins. Fail closed otherwise."""
    if log is None:
        return TrustResult(problems=[f"{missing}: no protocol can be live"])
    if not expected_sha256:
        return TrustResult(problems=["the county configuration pins no officer_keys_sha256: "
                                     "no protocol can be live"])
    actual = fingerprint(log)
    if actual != expected_sha256:
        return TrustResult(problems=[f"officer key file fingerprint {actual[:16]}... differs "
                                     f"from the county's {expected_sha256[:16]}...: no officer "
                                     "key is trusted"])
    return replay(log)


def topic_only_keys(trusted: Mapping[str, Any], topic_key_ids: Iterable[str]) -> list[str]:
    """Officer keys announced on the config topic that the anchor file does not hold; they verify
    nothing, and status says so."""
    return sorted(set(topic_key_ids) - set(trusted))


# -- building the log (the CLI uses these) -----------------------------------------------------


def change_for(party: str, officer: str, public_key: Ed25519PublicKey, *,
               replaces: str | None = None) -> KeyChange:
    return KeyChange(action="add", party=party, officer=officer, key_id=key_id_of(public_key),
                     public_key=base64.b64encode(_raw(public_key)).decode("ascii"),
                     replaces=replaces)


def genesis(keys: Iterable[tuple[str, str, Ed25519PublicKey]]) -> AnchorLog:
    """The first set: (party, officer, public key) each, approved by the county fingerprint."""
    return AnchorLog(genesis=[change_for(p, o, k) for p, o, k in keys])


def countersign(log: AnchorLog, index: int, private_key: Ed25519PrivateKey, party: str,
                officer: str) -> AnchorLog:
    """A copy of ``log`` with change ``index`` countersigned by ``party``'s officer. Only the last
    change may be countersigned: changes after it would hash a different prefix."""
    if index != len(log.changes) - 1:
        raise ConfigError("only the last change of the officer key log can be countersigned")
    change = log.changes[index]
    if party == change.party:
        raise ConfigError(f"{party} cannot countersign its own key change; another party's "
                          "officer must")
    sig = private_key.sign(change_message(log, index))
    cs = Countersignature(party=party, officer=officer, key_id=key_id_of(private_key.public_key()),
                          signature=base64.b64encode(sig).decode("ascii"))
    changes = [*log.changes[:index], change.model_copy(update={"countersignature": cs})]
    return log.model_copy(update={"changes": changes})


# -- the file ----------------------------------------------------------------------------------


def parse_log(text: str, source: str) -> AnchorLog:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=source) from None
    try:
        return AnchorLog.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(err["msg"], file=source, field=loc or None) from None


def dump_log(log: AnchorLog) -> str:
    head = ("# s115hub officer trust anchors (services/core/crypto/officer_trust.py). Pin its\n"
            "# fingerprint in county.yaml, quoted (YAML reads some hex strings as numbers):\n"
            f"#   officer_keys_sha256: \"{fingerprint(log)}\"\n")
    body = yaml.safe_dump(log.model_dump(mode="json", exclude_none=True), sort_keys=False,
                          width=100)
    return head + body


def load_log(path: Path) -> AnchorLog | None:
    """The anchor file at ``path``; None when there is none (then nothing is trusted)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read officer key file: {exc.strerror}", file=str(path)) from None
    return parse_log(text, str(path))


class AnchorFile:
    """The mounted anchor file, re-read when it changes on disk (a Kubernetes secret update, a
    rotation): the services ask for it on every config change, and a rotation arrives as a new
    file plus a county with its fingerprint, in either order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._log: AnchorLog | None = None
        #: Why there is no log (missing or unreadable file); never raised, so a bad file blocks
        #: release instead of stopping a service.
        self.problem = f"no officer key file at {self.path}"

    def current(self) -> AnchorLog | None:
        try:
            st = self.path.stat()
        except OSError:
            self._stamp, self._log = None, None
            self.problem = f"no officer key file at {self.path}"
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._log = load_log(self.path)
                self.problem = "" if self._log else f"no officer key file at {self.path}"
            except ConfigError as exc:
                self._log, self.problem = None, f"officer key file refused ({exc})"
        return self._log

    def trust(self, expected_sha256: str | None) -> TrustResult:
        return trusted_keys(self.current(), expected_sha256, missing=self.problem)
