"""`protocol sign` writes the signature block into the file textually: every comment and every
other line of the officer's file stays as it was, and the result verifies."""

from __future__ import annotations

from services.cli.protocol_text import with_signatures
from services.core.config.settings import REPO_ROOT
from services.protocols.protocol import parse_protocol
from services.protocols.signing import (
    generate_officer_key,
    officer_keys_from,
    sign_protocol,
    verify_signatures,
)

SOURCE = (REPO_ROOT / "deploy" / "hertfordshire" / "protocols" / "health-county.yaml").read_text()


def sign_all(text: str) -> tuple[str, dict[str, bytes]]:
    protocol = parse_protocol(text)
    publics: dict[str, bytes] = {}
    for party in protocol.parties:
        private_pem, public_pem, _ = generate_officer_key()
        publics[party] = public_pem
        protocol = sign_protocol(protocol, private_pem, party, f"Officer of {party}")
        text = with_signatures(text, protocol)
    return text, publics


def test_given_a_commented_protocol_when_every_party_signs_then_only_signatures_change() -> None:
    signed_text, publics = sign_all(SOURCE)
    before = [ln for ln in SOURCE.splitlines() if not ln.startswith("signatures:")]
    after = signed_text.splitlines()
    # Every original line (comments included) is still there, in order.
    it = iter(after)
    assert all(any(ln == a for a in it) for ln in before)
    assert sum(ln.lstrip().startswith("#") for ln in after) == \
        sum(ln.lstrip().startswith("#") for ln in SOURCE.splitlines())
    protocol = parse_protocol(signed_text)
    assert verify_signatures(protocol, officer_keys_from(publics)) == []


def test_given_a_party_signs_again_then_its_signature_is_replaced_not_added() -> None:
    signed_text, _ = sign_all(SOURCE)
    protocol = parse_protocol(signed_text)
    party = protocol.parties[0]
    private_pem, _, _ = generate_officer_key()
    again = with_signatures(signed_text, sign_protocol(protocol, private_pem, party, "New"))
    assert len(parse_protocol(again).signatures) == len(protocol.parties)
    assert again.count("signatures:") == 1


def test_given_no_signatures_key_then_the_block_is_appended() -> None:
    text = "\n".join(ln for ln in SOURCE.splitlines() if not ln.startswith("signatures:"))
    protocol = parse_protocol(text)
    private_pem, _, _ = generate_officer_key()
    out = with_signatures(text, sign_protocol(protocol, private_pem, protocol.parties[0], "O"))
    assert out.startswith(text)
    assert len(parse_protocol(out).signatures) == 1
