from __future__ import annotations

import hashlib
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from services.core.crypto.errors import CryptoError
from services.core.errors import ProtocolError
from services.protocols.protocol import FeedRules, FieldRule, parse_protocol
from services.protocols.signing import (
    generate_officer_key,
    key_id_of,
    load_officer_keys,
    load_private_key,
    protocol_digest,
    public_key_from_pem,
    save_private_key,
    save_public_key,
    sign_protocol,
    valid_signers,
    verify_signatures,
)

from . import Officers, make_protocol


@pytest.fixture(scope="module")
def officers() -> Officers:
    return Officers(["herts-police", "grp-watford", "grp-herts-county", "grp-dacorum"])


def test_given_a_new_officer_key_then_its_id_is_the_sha256_prefix_of_the_raw_public_key() -> None:
    _, public_pem, key_id = generate_officer_key()
    raw = public_key_from_pem(public_pem).public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw)
    assert key_id == hashlib.sha256(raw).hexdigest()[:16]


def test_given_every_party_signs_when_verified_then_there_are_no_problems(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    assert verify_signatures(signed, officers.registry) == []
    assert valid_signers(signed, officers.registry) == {"herts-police", "grp-watford",
                                                        "grp-herts-county"}


def test_given_a_signed_protocol_when_dumped_to_yaml_and_reloaded_then_it_still_verifies(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    reloaded = parse_protocol(yaml.safe_dump(signed.model_dump(mode="json")))
    assert verify_signatures(reloaded, officers.registry) == []


def test_given_an_edit_after_signing_when_verified_then_every_signature_is_void(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    wider = signed.feeds["police"].fields | {"address": FieldRule(transform="drop")}
    edits: list[dict[str, Any]] = [
        {"recipients": [*signed.recipients, "grp-dacorum"]},
        {"valid_until": signed.valid_until.replace(year=2030)},
        {"feeds": {"police": FeedRules(fields=wider)}},
        {"k": 2},
    ]
    for update in edits:
        edited = signed.model_copy(update=update)
        problems = verify_signatures(edited, officers.registry)
        assert "signature invalid for herts-police" in problems, update
        assert "signature invalid for grp-watford" in problems, update


def test_given_signatures_then_the_digest_ignores_them(officers: Officers) -> None:
    protocol = make_protocol()
    assert protocol_digest(officers.sign(protocol)) == protocol_digest(protocol)


def test_given_a_missing_party_signature_then_it_is_reported_as_unsigned(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol(), skip=("grp-herts-county",))
    assert verify_signatures(signed, officers.registry) == ["unsigned by grp-herts-county"]


def test_given_a_party_signs_with_another_partys_key_then_it_is_invalid(
        officers: Officers) -> None:
    protocol = officers.sign(make_protocol(), skip=("grp-watford",))
    forged = sign_protocol(protocol, officers.private["herts-police"], "grp-watford", "Mallory")
    problems = verify_signatures(forged, officers.registry)
    assert len(problems) == 1
    assert problems[0].startswith("signature invalid for grp-watford")


def test_given_a_key_the_hub_does_not_know_then_the_signature_is_invalid(
        officers: Officers) -> None:
    stranger_pem, _, _ = generate_officer_key()
    protocol = officers.sign(make_protocol(), skip=("grp-watford",))
    signed = sign_protocol(protocol, stranger_pem, "grp-watford", "Stranger")
    problems = verify_signatures(signed, officers.registry)
    assert len(problems) == 1
    assert "unknown key" in problems[0]


def test_given_a_signature_relabelled_to_another_officer_then_it_is_invalid(
        officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    sigs = [s.model_copy(update={"officer": "Someone Else"}) if s.party == "herts-police" else s
            for s in signed.signatures]
    problems = verify_signatures(signed.model_copy(update={"signatures": sigs}),
                                 officers.registry)
    assert problems == ["signature invalid for herts-police"]


def test_given_a_party_signs_again_then_its_signature_is_replaced(officers: Officers) -> None:
    signed = officers.sign(make_protocol())
    again = sign_protocol(signed, officers.private["grp-watford"], "grp-watford", "New Chair")
    assert [s.party for s in again.signatures].count("grp-watford") == 1
    assert verify_signatures(again, officers.registry) == []


def test_given_a_non_party_when_signing_then_it_is_refused(officers: Officers) -> None:
    with pytest.raises(ProtocolError, match="grp-dacorum is not a party"):
        sign_protocol(make_protocol(), officers.private["grp-dacorum"], "grp-dacorum", "X")


def test_given_saved_keys_when_loaded_then_they_sign_and_verify(tmp_path: Path) -> None:
    private_pem, public_pem, key_id = generate_officer_key()
    save_private_key(tmp_path / "private" / "police.pem", private_pem)
    save_public_key(tmp_path / "public" / "herts-police" / "dpo.pub.pem", public_pem)
    assert stat.S_IMODE((tmp_path / "private" / "police.pem").stat().st_mode) == 0o600
    private = load_private_key(tmp_path / "private" / "police.pem")
    registry = load_officer_keys(tmp_path / "public")
    assert registry[key_id][0] == "herts-police"
    assert key_id_of(registry[key_id][1]) == key_id
    protocol = make_protocol(recipients=["grp-watford"])
    signed = sign_protocol(protocol, private, "herts-police", "DPO")
    assert verify_signatures(signed, registry) == ["unsigned by grp-watford"]


def test_given_an_existing_private_key_when_saving_again_then_it_is_not_overwritten(
        tmp_path: Path) -> None:
    first, _, _ = generate_officer_key()
    second, _, _ = generate_officer_key()
    save_private_key(tmp_path / "k.pem", first)
    with pytest.raises(CryptoError, match="already exists"):
        save_private_key(tmp_path / "k.pem", second)
    assert (tmp_path / "k.pem").read_bytes() == first


def test_given_garbage_when_loading_a_key_then_crypto_error_without_the_content(
        tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n")
    with pytest.raises(CryptoError) as info:
        load_private_key(tmp_path / "bad.pem")
    assert "c2VjcmV0" not in str(info.value)
