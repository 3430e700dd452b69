"""What every service knows of the configuration, rebuilt from the compacted config topic.

Keys on the topic: ``county`` (partners and groups), ``protocol/<id>@<version>`` (the signed YAML
text), ``officer/<key id>`` (an officer's public key and party), ``revoked/<id>@<version>``.
A null value (tombstone) removes a key, which is how a revocation is lifted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.core.county import County


@dataclass
class ConfigState:
    county: County | None = None
    protocol_texts: dict[str, str] = field(default_factory=dict)
    officers: dict[str, dict[str, str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    version: int = 0

    def apply(self, key: str, value: dict[str, Any] | None) -> None:
        kind, _, name = key.partition("/")
        if kind == "county":
            self.county = County.model_validate(value) if value else None
        elif kind == "protocol":
            if value is None:
                self.protocol_texts.pop(name, None)
            else:
                self.protocol_texts[name] = str(value["yaml"])
        elif kind == "officer":
            if value is None:
                self.officers.pop(name, None)
            else:
                self.officers[name] = {k: str(v) for k, v in value.items()}
        elif kind == "revoked":
            (self.revoked.add if value is not None else self.revoked.discard)(name)
        self.version += 1

    def apply_message(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        self.apply(key.decode(), json.loads(value) if value else None)


def encode(value: dict[str, Any] | None) -> bytes | None:
    return None if value is None else json.dumps(value, sort_keys=True).encode()
