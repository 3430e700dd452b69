"""What every service knows of the configuration, rebuilt from the compacted config topic.

Keys on the topic: ``county`` (partners and groups), ``protocol/<id>@<version>`` (the signed YAML
text), ``officer/<key id>`` (an officer's public key and party), ``revoked/<id>@<version>``.
A null value (tombstone) removes a key, which is how a revocation is lifted.

Fail-closed (issue 12): a message that does not validate against its contract
(``schemas/config_message.py``, ``County``) raises ``ConfigRejected`` and changes nothing, so the
previous good state stays; the stage runner dead-letters it. A revocation is the exception that
makes this safe: any non-null value under ``revoked/`` revokes, whatever else is wrong with it,
because refusing a malformed revocation would leave records flowing under a protocol its owner
meant to stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.config_message import OfficerKey, ProtocolDocument, Revocation
from services.core.config.county import County
from services.core.config.errors import ConfigError

KINDS = ("county", "protocol", "officer", "revoked")
_MAX_NAME = 300


class ConfigRejected(ConfigError):
    """A config message that does not validate; the state is unchanged (unless it revoked)."""


def _problems(exc: ValidationError) -> str:
    # Field paths and rule messages only: pydantic's default text also echoes the input value.
    return "; ".join(f"{'/'.join(str(p) for p in e['loc']) or '/'}: {e['msg']}"
                     for e in exc.errors(include_input=False, include_url=False))[:500]


@dataclass
class ConfigState:
    county: County | None = None
    protocol_texts: dict[str, str] = field(default_factory=dict)
    officers: dict[str, dict[str, str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    version: int = 0

    def apply(self, key: str, value: Any) -> None:
        """Apply one message's (key, parsed value). Raises ConfigRejected, state unchanged."""
        kind, _, name = key.partition("/")
        if kind not in KINDS:
            raise ConfigRejected(f"config key {key[:80]!r}: unknown kind (known: "
                                 f"{', '.join(KINDS)})")
        if kind != "county" and not (0 < len(name) <= _MAX_NAME):
            raise ConfigRejected(f"config key {kind}/: the name must be 1 to {_MAX_NAME} "
                                 "characters")
        try:
            if kind == "county":
                self.county = County.model_validate(value) if value is not None else None
            elif kind == "protocol":
                if value is None:
                    self.protocol_texts.pop(name, None)
                else:
                    self.protocol_texts[name] = ProtocolDocument.model_validate(value).yaml
            elif kind == "officer":
                if value is None:
                    self.officers.pop(name, None)
                else:
                    self.officers[name] = OfficerKey.model_validate(value).model_dump(
                        exclude_none=True)
            elif value is not None:
                self.revoked.add(name)  # first: it applies whatever else is wrong with it
                self.version += 1
                try:
                    Revocation.model_validate(value)
                except ValidationError as exc:
                    raise ConfigRejected(f"config key {key[:80]!r}: {_problems(exc)} (applied "
                                         "as a revocation all the same)") from None
                return
            else:
                self.revoked.discard(name)
        except ValidationError as exc:
            raise ConfigRejected(f"config key {key[:80]!r}: {_problems(exc)}") from None
        self.version += 1

    def apply_message(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one message as read from the topic. Raises ConfigRejected (state unchanged,
        except that a malformed revocation still revokes)."""
        if key is None:
            raise ConfigRejected("config message without a key")
        try:
            text = key.decode()
        except UnicodeDecodeError:
            raise ConfigRejected("config key is not UTF-8") from None
        if value is None:  # a tombstone: the only way to remove a key
            self.apply(text, None)
            return
        try:
            parsed = json.loads(value)
            if parsed is None:
                # JSON null is not a tombstone: removing a county or protocol takes a real one.
                raise ValueError("null")
        except ValueError:
            if text.startswith("revoked/"):
                self.apply(text, {})
                raise ConfigRejected(f"config key {text[:80]!r}: value is not JSON (applied as "
                                     "a revocation all the same)") from None
            raise ConfigRejected(f"config key {text[:80]!r}: value is not JSON") from None
        if text.startswith("revoked/") and not isinstance(parsed, dict):
            self.apply(text, {})
            raise ConfigRejected(f"config key {text[:80]!r}: value is not a JSON object "
                                 "(applied as a revocation all the same)")
        self.apply(text, parsed)

    def apply_lenient(self, key: bytes | None, value: bytes | None) -> str | None:
        """``apply_message`` for readers that only report (the CLI): the rejection, or None."""
        try:
            self.apply_message(key, value)
        except ConfigRejected as exc:
            return str(exc)
        return None


def encode(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else json.dumps(value, sort_keys=True).encode()
