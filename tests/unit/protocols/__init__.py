"""Tests for the protocol model, signing, lifecycle and the transforms.

Shared helpers live here (this package owns no conftest). Officer keys are generated per test
run and never written outside pytest's tmp_path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.protocols.protocol import Protocol
from services.protocols.signing import (
    generate_officer_key,
    officer_keys_from,
    private_key_from_pem,
    sign_protocol,
)

HERTS_PROTOCOLS = Path(__file__).resolve().parents[3] / "deploy" / "hertfordshire" / "protocols"

#: A small valid protocol document; tests edit single lines of it, so its line numbers matter:
#: 14 quasi_identifiers, 16 police, 18 category, 19 occurred_at, 21 to.
BASE_YAML = """\
id: test-police
version: 1
title: Test protocol
disclosers: [herts-police]
recipients: [grp-watford]
purpose: Hot-spot tasking under the s17A duty to share depersonalised information
lawful_basis: [Crime and Disorder Act 1998 s115]
k: 3
suppress_below: 5
retention_days: 365
valid_from: 2026-01-01
valid_until: 2027-12-31
review_by: 2027-06-30
quasi_identifiers: [occurred_at]
feeds:
  police:
    fields:
      category: keep
      occurred_at:
        transform: time
        to: hour
"""


def protocol_data(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "test-police", "version": 1, "title": "Test protocol",
        "disclosers": ["herts-police"], "recipients": ["grp-watford", "grp-herts-county"],
        "purpose": "Hot-spot tasking", "lawful_basis": ["Crime and Disorder Act 1998 s115"],
        "feeds": {"police": {"fields": {
            "category": "keep",
            "occurred_at": {"transform": "time", "to": "hour"},
            "location": {"transform": "location", "to": "ward"},
        }}},
        "quasi_identifiers": ["occurred_at", "location"],
        "k": 3, "suppress_below": 5, "retention_days": 365,
        "valid_from": "2026-01-01", "valid_until": "2027-12-31", "review_by": "2027-06-30",
    }
    data.update(over)
    return data


def make_protocol(**over: Any) -> Protocol:
    return Protocol.model_validate(protocol_data(**over))


class Officers:
    """One generated Ed25519 officer key per party, and the hub's registry of their public keys."""

    def __init__(self, parties: list[str] | tuple[str, ...]) -> None:
        self.private: dict[str, Ed25519PrivateKey] = {}
        pems: dict[str, bytes] = {}
        for party in parties:
            private_pem, public_pem, _ = generate_officer_key()
            self.private[party] = private_key_from_pem(private_pem)
            pems[party] = public_pem
        self.registry: dict[str, tuple[str, Ed25519PublicKey]] = officer_keys_from(pems)

    def sign(self, protocol: Protocol, *, skip: tuple[str, ...] = ()) -> Protocol:
        for party in protocol.parties:
            if party not in skip:
                protocol = sign_protocol(protocol, self.private[party], party,
                                         f"Designated Officer, {party}")
        return protocol
