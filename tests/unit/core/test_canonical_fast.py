"""The json.dumps fast path of canonical_bytes must give the reference encoder's bytes, or the
same error, for every value: a single differing byte changes an audit hash an inspector
recomputes with another JCS library."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.crypto import canonical
from services.core.crypto.canonical import _MAX_SAFE_INT, _reference_bytes, canonical_bytes

# Characters chosen to hit every escaping and ordering boundary: controls, quote, backslash,
# DEL, U+2028/2029, the U+E000-U+FFFF block that sorts differently in UTF-16, astral planes,
# and lone surrogates (which must fail in both paths).
_TRICKY = st.sampled_from(
    ["\x00", "\x08", "\x0c", "\n", "\r", "\t", "\x1f", '"', "\\", "/", "\x7f", "\u2028",
     "\u2029", "\ud800", "\udfff", "\ue000", "\uffff", "\U00010000", "\U0001f600", "é", "a"])
_TEXT = st.lists(st.one_of(st.characters(), _TRICKY), max_size=6).map("".join)
_INTS = st.integers(min_value=-_MAX_SAFE_INT - 2, max_value=_MAX_SAFE_INT + 2)
_AWARE = st.datetimes(timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]))

_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _TEXT, st.floats(allow_nan=True),
                     st.dates(), _AWARE, st.datetimes())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=20,
)
# Values the fast path can take (no floats, no naive datetimes), so it is really exercised.
_PLAIN = st.recursive(
    st.one_of(st.none(), st.booleans(), _INTS, _TEXT, st.dates(), _AWARE),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_TEXT, inner, max_size=5)),
    max_leaves=20,
)


def _outcome(fn: Any, v: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(v)
    except TypeError:
        return "error", "TypeError"
    except ValueError:
        # A value with two faults (a lone surrogate and a naive datetime) may be refused for
        # either one first; refusing it is what matters. UnicodeEncodeError is a ValueError.
        return "error", "ValueError"


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_fast_path_equals_reference_for_random_json(v: Any) -> None:
    assert _outcome(canonical_bytes, v) == _outcome(_reference_bytes, v)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(_PLAIN)
def test_fast_path_equals_reference_on_float_free_values(v: Any) -> None:
    assert _outcome(canonical_bytes, v) == _outcome(_reference_bytes, v)


def test_float_free_values_with_bmp_keys_take_the_fast_path(monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    def boom(_: Any) -> bytes:
        raise AssertionError("reference path used")

    monkeypatch.setattr(canonical, "_reference_bytes", boom)
    v = {"é\ue000": [1, "\U0001f600\u2028\x01", None, True],
         "at": datetime(2026, 1, 2, tzinfo=UTC), "d": date(2026, 1, 2)}
    assert canonical_bytes(v) == (
        '{"at":"2026-01-02T00:00:00.000000Z","d":"2026-01-02",'
        '"é\ue000":[1,"\U0001f600\u2028\\u0001",null,true]}').encode()


@pytest.mark.parametrize("v", [
    {"\ue000": 1, "\U0001f600": 2},  # UTF-16 puts the astral key first, code points last
    {"x": 1e16},
    {"x": [1e-07, -0.0]},
])
def test_values_where_json_dumps_differs_take_the_reference_path(v: Any) -> None:
    fast = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_bytes(v) == _reference_bytes(v)
    assert canonical_bytes(v) != fast


def test_lone_surrogates_and_naive_datetimes_fail_in_the_fast_path_too() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_bytes({"k": "\ud800"})
    with pytest.raises(ValueError, match="naive"):
        canonical_bytes({"k": datetime(2026, 1, 1)})
    with pytest.raises(ValueError, match="outside the range"):
        canonical_bytes([2**53])
