"""Canonical JSON bytes for anything the hub hashes or signs (audit events, checkpoints,
bundle manifests, protocol documents).

The output is RFC 8785 (JSON Canonicalization Scheme) for plain JSON values: keys sorted by
UTF-16 code units, no whitespace, UTF-8, ECMAScript number formatting. Following a published
scheme, rather than "whatever json.dumps does", is what lets an inspector recompute a hash or
check a signature offline with any JCS library in any language.

Extensions, applied before serialising, because our models carry these types:

* ``datetime`` (timezone-aware only) becomes ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC. The fixed
  microsecond width means equal instants always give equal bytes; naive datetimes are refused
  because the instant they name depends on the machine that reads them.
* ``date`` becomes ``YYYY-MM-DD``; ``Enum`` becomes its value; a pydantic model becomes its
  ``model_dump()``.

Fast path: the audit chain canonicalises several times per delivery, and the recursive encoder
below was ~46 % of the router's CPU. For trees without floats, ``json.dumps(sort_keys=True,
ensure_ascii=False)`` gives the same bytes, and so does ``orjson.dumps(option=OPT_SORT_KEYS)``,
which the fast path uses (issue 12): its string escaping is the one
ECMAScript's JSON.stringify uses (two-character escapes for backspace, form feed,
newline, CR, tab, quote and backslash; six-character lowercase-hex escapes for the other
control characters; everything else literal, U+2028/2029 included), and code-point
key order equals UTF-16 order unless a key holds a character above U+FFFF. So the fast path is
taken only after a scan shows no floats, no over-large ints, only exact builtin containers with
str keys free of astral characters, and datetimes/dates (turned into the same strings as below);
anything else goes to the reference encoder. ``tests/unit/core/test_canonical_fast.py`` checks
the two agree on random values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["canonical_bytes", "format_utc"]

# Integers beyond this cannot be represented exactly by JCS verifiers, which read every number
# as an IEEE double; refusing them beats producing bytes another implementation cannot reproduce.
_MAX_SAFE_INT = 2**53 - 1


def canonical_bytes(obj: Any) -> bytes:
    """Canonical UTF-8 JSON for ``obj``. Raises TypeError/ValueError for values that have no
    single canonical form (sets, bytes, NaN, naive datetimes, non-string keys, huge ints)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump()
    if _plain(obj):
        try:
            return _orjson_dumps(obj, default=_default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            # A lone surrogate: the reference path refuses it with the error JCS asks for.
            return _reference_bytes(obj)
    return _reference_bytes(obj)


def _reference_bytes(obj: Any) -> bytes:
    """The reference encoder, kept separate so tests can compare it with the fast path."""
    out: list[str] = []
    _encode(obj, out)
    # Lone surrogates fail here, which is what JCS requires too.
    return "".join(out).encode("utf-8")


_ASTRAL = "\U00010000"
_LEAVES = frozenset({str, bool, type(None), datetime, date})
_STR_ONLY = {str}


def _plain(v: Any) -> bool:
    """True when json.dumps gives exactly the RFC 8785 bytes for ``v`` (see module docstring).
    Exact type checks on purpose: subclasses (IntEnum, StrEnum, custom Mappings) may serialise
    or sort differently in json and in ``_encode``, so they take the reference path."""
    t = type(v)
    if t is dict:
        if v:
            if set(map(type, v)) != _STR_ONLY:
                return False
            keys = "".join(v)
            if not keys.isascii() and max(keys) >= _ASTRAL:
                return False
        items: Any = v.values()
    elif t is list or t is tuple:
        items = v
    else:
        return _plain_leaf(v)
    # Leaves are checked inline: a disclosure event is mostly leaves and this runs per hash.
    for item in items:
        ti = type(item)
        if ti in _LEAVES:
            continue
        if ti is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        elif not _plain(item):
            return False
    return True


def _plain_leaf(v: Any) -> bool:
    t = type(v)
    if t is int:
        return bool(-_MAX_SAFE_INT <= v <= _MAX_SAFE_INT)
    return t in _LEAVES


def _default(v: Any) -> str:
    # Only reached for what _plain let through that json cannot encode itself.
    if isinstance(v, datetime):
        return format_utc(v)
    if isinstance(v, date):
        return v.isoformat()
    raise TypeError(f"{type(v).__name__} has no canonical JSON form")


# orjson (issue 12: ~5x faster than the C json encoder on a disclosure event; the chain and the
# payload digest canonicalise every delivery) writes the same bytes as json.dumps(sort_keys=True,
# ensure_ascii=False, separators=(",", ":")) for what _plain lets through: keys sorted by code
# point, UTF-8 literal, the same escapes (test_canonical_fast checks it against the reference on
# random values). Dates and datetimes are passed to _default, whose fixed microsecond width
# orjson's own datetime format does not have.
_orjson_dumps = orjson.dumps
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def format_utc(dt: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix and fixed microseconds."""
    if dt.tzinfo is UTC and dt.year >= 1000:
        # Already UTC (every chained event's time is, see audit_chain._utc): the general path
        # below was 4 % of the router's samples (py-spy, issue 12).
        return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} is ambiguous; give it a timezone")
    utc = dt.astimezone(UTC)
    if utc.year < 1000:  # isoformat pads the year to four digits; keep strftime's exact form
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is ~4x faster than strftime and gives the same text (issue 12 profile: strftime
    # was 8% of the router's chain path).
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _encode(v: Any, out: list[str]) -> None:
    # bool before int: bool is an int subclass but must stay true/false.
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        # Python's escaping with ensure_ascii=False matches JSON.stringify's, which JCS adopts.
        out.append(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, int):
        if abs(v) > _MAX_SAFE_INT:
            raise ValueError(f"integer {v} is outside the range JSON verifiers can hold exactly")
        out.append(str(int(v)))
    elif isinstance(v, float):
        out.append(_es_number(v))
    elif isinstance(v, datetime):
        out.append(json.dumps(format_utc(v)))
    elif isinstance(v, date):
        out.append(json.dumps(v.isoformat()))
    elif isinstance(v, Enum):
        _encode(v.value, out)
    elif isinstance(v, BaseModel):
        _encode(v.model_dump(), out)
    elif isinstance(v, Mapping):
        keys = list(v.keys())
        for k in keys:
            if not isinstance(k, str):
                raise TypeError(f"object keys must be strings, got {type(k).__name__}")
        out.append("{")
        for i, k in enumerate(sorted(keys, key=lambda s: s.encode("utf-16-be"))):
            if i:
                out.append(",")
            out.append(json.dumps(k, ensure_ascii=False))
            out.append(":")
            _encode(v[k], out)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        # Sets and bytes have no single JSON form; making the caller choose keeps hashes stable.
        raise TypeError(f"{type(v).__name__} has no canonical JSON form")


def _es_number(x: float) -> str:
    """ECMAScript Number::toString, as RFC 8785 requires.

    Python's repr already yields the shortest digits that round-trip (the same digits JavaScript
    picks); only where the decimal point and exponent go differs, so re-place them.
    """
    if not math.isfinite(x):
        raise ValueError("NaN and infinity are not JSON numbers")
    if x == 0:
        return "0"  # covers -0.0, which JavaScript also prints as 0
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    # n: the decimal exponent such that value = 0.<digits> * 10**n
    n = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        fraction = "." + digits[1:] if k > 1 else ""
        body = f"{digits[0]}{fraction}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body
