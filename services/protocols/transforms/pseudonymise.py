"""``pseudonymise``: replace an identifier with a keyed token so a group can link records about the
same person without learning who they are.

Token: ``p<epoch>_<first 20 chars of RFC 4648 base32 of HMAC-SHA256(key, message)>`` (100 bits),
e.g. ``p3_MFRGGZDFMZTWQ2LKNNWG``.

* The key is per protocol and key epoch (``ctx.pseudonym_key`` / ``ctx.key_epoch``). The same
  person gets the same token within one protocol and epoch; tokens from another protocol or epoch
  cannot be linked without the keys. Shredding an epoch's key makes its tokens unlinkable for good.
* Never a bare hash: names, dates of birth and NHS numbers are few enough to hash them all, so an
  unkeyed hash would be reversible by anyone.
* Input is normalised first (NFKC, casefold, whitespace collapsed; phone and NHS style numbers to
  their digits; dates to ISO) so trivial spelling differences do not split one person in two.
* ``with: [field, ...]`` folds other fields of the record into one identity (name + date of birth
  tells two John Smiths apart). If any of those fields is missing the field is dropped: a partial
  identity would link different people who merely share a name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from services.core.config.errors import ConfigError
from services.core.crypto.errors import CryptoError
from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_known,
    check_mapping,
)

#: HMAC keys shorter than this are refused: 128 bits is the floor for a secret that must resist
#: guessing for the life of the protocol.
MIN_KEY_BYTES = 16
TOKEN_CHARS = 20
_TOKEN_BYTES = -(-TOKEN_CHARS // 8) * 5  # whole 5-byte base32 groups covering TOKEN_CHARS
MAX_WITH = 5
# Versioned domain separation: a later change of normalisation must not collide with v1 tokens.
_DOMAIN = "s115hub/pseudonym/v1"
_FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_WS = re.compile(r"\s+")
_NUMBER_SEPARATORS = re.compile(r"[\s\-.()]")
_NUMBERISH = re.compile(r"^\+?\d+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def normalise(value: Any) -> str:
    """A canonical text form: equal for values a person would call the same."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return json.dumps({str(k): normalise(v) for k, v in value.items()}, sort_keys=True)
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = _WS.sub(" ", text).strip()
    if _ISO_DATE.match(text):
        return text  # a date of birth as text must equal the same date as a date object
    compact = _NUMBER_SEPARATORS.sub("", text)
    if _NUMBERISH.match(compact):
        # "943 476 5919" and "9434765919" are one NHS number; "+44 1234 567890" one phone.
        for prefix in ("+44", "0044"):
            if compact.startswith(prefix):
                return "0" + compact[len(prefix):].lstrip("0")  # "+44 (0)1234" too
        return compact
    return text


# json.dumps builds a new encoder per call when given options; the same settings, built once.
_MESSAGE = json.JSONEncoder(ensure_ascii=False)


def token(key: bytes, epoch: int, parts: list[str]) -> str:
    message = _MESSAGE.encode([_DOMAIN, *parts]).encode()
    digest = hmac.digest(key, message, hashlib.sha256)
    # Base32 writes each 5 bytes as 8 characters on their own, so 15 bytes give the same first
    # 20 characters as the whole digest at a third of the (pure-Python) encoding cost.
    return f"p{epoch}_{base64.b32encode(digest[:_TOKEN_BYTES]).decode()[:TOKEN_CHARS]}"


class Pseudonymise(Transform):
    name = "pseudonymise"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("with",), self.name)
        if "with" not in params:
            return
        others = params["with"]
        if not isinstance(others, list) or not others:
            raise ConfigError("must be a non-empty list of field names", field="with")
        if len(others) > MAX_WITH:
            raise ConfigError(f"at most {MAX_WITH} fields", field="with")
        for name in others:
            if not isinstance(name, str) or not _FIELD_NAME.match(name):
                raise ConfigError(f"not a field name: {name!r}", field="with")
        if len(set(others)) != len(others):
            raise ConfigError("lists a field twice", field="with")

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        key, epoch = ctx.pseudonym_key, ctx.key_epoch
        if not isinstance(key, bytes) or not key:
            raise CryptoError(f"no pseudonym key for protocol {ctx.protocol_id}")
        if len(key) < MIN_KEY_BYTES:
            raise CryptoError(f"pseudonym key for protocol {ctx.protocol_id} is shorter than "
                              f"{MIN_KEY_BYTES} bytes")
        if epoch is None:
            raise CryptoError(f"no key epoch for protocol {ctx.protocol_id}")
        if value is None:
            return DROP
        parts = [normalise(value)]
        for other in params.get("with", ()):
            other_value = ctx.record.get(other)
            if other_value is None or normalise(other_value) == "":
                return DROP
            parts.append(normalise(other_value))
        if parts[0] == "":
            return DROP
        return token(key, epoch, parts)
