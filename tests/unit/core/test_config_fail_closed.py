"""Config is fail-closed (issue 12): a message that does not validate changes nothing, and a
revocation applies whatever else is wrong with it."""

from __future__ import annotations

import json

import pytest

from services.core.config.state import ConfigRejected, ConfigState

COUNTY = {"county": "Testshire", "partners": [{"id": "pol", "name": "Police", "kind": "police",
                                               "feeds": ["police"], "officer": "o"}],
          "groups": []}


def good() -> ConfigState:
    s = ConfigState()
    s.apply_message(b"county", json.dumps(COUNTY).encode())
    s.apply_message(b"protocol/p@1", json.dumps({"yaml": "id: p"}).encode())
    s.apply_message(b"officer/k1", json.dumps({"party": "pol", "officer": "o",
                                               "public_key_pem": "PEM"}).encode())
    return s


@pytest.mark.parametrize(("key", "value"), [
    (b"county", json.dumps({"county": 5}).encode()),
    (b"county", b"null"),
    (b"county", b"{"),
    (b"protocol/p@1", json.dumps({"source": "x"}).encode()),
    (b"protocol/p@1", json.dumps({"yaml": 5}).encode()),
    (b"officer/k1", b"not json"),
    (b"officer/k1", json.dumps({"party": []}).encode()),
    (b"weird/thing", b"{}"),
    (None, b"{}"),
    (b"\xff", b"{}"),
])
def test_given_an_invalid_message_then_it_is_rejected_and_the_state_is_unchanged(
        key: bytes | None, value: bytes) -> None:
    s = good()
    before = (s.county, dict(s.protocol_texts), dict(s.officers), set(s.revoked))
    with pytest.raises(ConfigRejected):
        s.apply_message(key, value)
    assert (s.county, s.protocol_texts, s.officers, s.revoked) == before


@pytest.mark.parametrize("value", [b"{not json", b"[]", b"5", json.dumps({"reason": 5}).encode(),
                                   b"{}"])
def test_given_a_revocation_in_any_shape_then_it_applies(value: bytes) -> None:
    s = good()
    if value == b"{}":
        s.apply_message(b"revoked/p@1", value)
    else:
        with pytest.raises(ConfigRejected, match="applied as a revocation"):
            s.apply_message(b"revoked/p@1", value)
    assert "p@1" in s.revoked


def test_only_a_real_tombstone_removes_a_key_or_lifts_a_revocation() -> None:
    s = good()
    s.apply_message(b"revoked/p@1", b"{}")
    s.apply_message(b"revoked/p@1", None)
    s.apply_message(b"protocol/p@1", None)
    assert "p@1" not in s.revoked
    assert "p@1" not in s.protocol_texts


def test_the_reason_never_echoes_the_value() -> None:
    s = good()
    with pytest.raises(ConfigRejected) as err:
        s.apply_message(b"officer/k1", json.dumps({"party": "pol", "officer": ["Jane Doe"],
                                                   "public_key_pem": "x"}).encode())
    assert "Jane" not in str(err.value)
    assert "officer" in str(err.value)


def test_given_the_officer_messages_config_apply_publishes_then_the_follower_takes_them() -> None:
    # Regression: the contract lacked ``countersigned_by``, so every officer key `config apply`
    # wrote was dead-lettered by all three services on every start.
    from services.core.config.publish import officer_message

    s = good()
    key, value = officer_message("k2", "pol", "o", "PEM", countersigned_by="k1")
    s.apply_message(key.encode(), json.dumps(value).encode())
    assert s.officers["k2"]["countersigned_by"] == "k1"
