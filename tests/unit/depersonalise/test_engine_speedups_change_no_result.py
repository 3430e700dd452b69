"""What the engine's speed-ups must not change: tokens, the protocols in force, gate counting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import date, timedelta

import pytest

from services.depersonalise.risk_gate import RiskGate
from services.protocols.lifecycle import ProtocolSet
from services.protocols.transforms.pseudonymise import token
from tests.unit.protocols import Officers, make_protocol

TODAY = date(2026, 6, 1)


@pytest.mark.parametrize("epoch", [1, 7])
def test_given_any_key_then_the_token_is_the_first_20_base32_chars_of_the_whole_digest(
        epoch: int) -> None:
    for _ in range(200):
        key, parts = os.urandom(32), [os.urandom(6).hex(), "1990-02-01"]
        message = json.dumps(["s115hub/pseudonym/v1", *parts], ensure_ascii=False).encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()
        assert token(key, epoch, parts) == f"p{epoch}_{base64.b32encode(digest).decode()[:20]}"


@pytest.fixture(scope="module")
def officers() -> Officers:
    return Officers(make_protocol().parties)


class TestLiveForIsKeptOnlyWhileTheSetAndDayStand:
    def test_given_a_version_added_after_a_lookup_then_the_next_lookup_uses_it(
            self, officers: Officers) -> None:
        pset = ProtocolSet([officers.sign(make_protocol())], officer_keys=officers.registry)
        assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == [
            "test-police@1"]
        pset.add(officers.sign(make_protocol(version=2)))
        assert [p.ref for p in pset.live_for("herts-police", "police", TODAY)] == [
            "test-police@2"]

    def test_given_the_day_after_expiry_then_nothing_is_live(self, officers: Officers) -> None:
        pset = ProtocolSet([officers.sign(make_protocol())], officer_keys=officers.registry)
        last = date(2027, 12, 31)
        assert pset.live_for("herts-police", "police", last)
        assert pset.live_for("herts-police", "police", last + timedelta(days=1)) == []

    def test_given_the_returned_list_is_changed_then_the_set_is_not(
            self, officers: Officers) -> None:
        pset = ProtocolSet([officers.sign(make_protocol())], officer_keys=officers.registry)
        pset.live_for("herts-police", "police", TODAY).clear()
        assert pset.live_for("herts-police", "police", TODAY)


class TestGateKeys:
    def _gate(self) -> RiskGate:
        return RiskGate(2, ["location", "band"])

    def test_given_equal_points_written_in_another_key_order_then_they_count_together(
            self) -> None:
        gate = self._gate()
        a = gate._key({"location": {"lat": 51.9, "lon": -0.2}, "band": "18-24"})
        b = gate._key({"band": "18-24", "location": {"lon": -0.2, "lat": 51.9}})
        assert a == b

    @pytest.mark.parametrize(("x", "y"), [
        ({1: "a"}, {"1": "a"}), (1, True), (1, "1"), (None, "null"), ("a", ["a"]),
        ({"lat": 1.0}, {"lat": "1.0"}), ("\ud800", "\ud801"),
    ])
    def test_given_different_values_then_their_keys_differ(self, x: object, y: object) -> None:
        gate = self._gate()
        assert gate._key({"location": x}) != gate._key({"location": y})

    def test_given_a_value_json_cannot_hold_then_it_still_gets_a_key(self) -> None:
        gate = self._gate()
        assert gate._key({"location": {1, 2}}) != gate._key({"location": {1, 3}})
