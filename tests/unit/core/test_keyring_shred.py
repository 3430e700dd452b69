"""Shredding pseudonym key epochs (issue 16): old epochs gone for good, the current one kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.core.crypto.errors import CryptoError
from services.core.crypto.keyring import PseudonymKeyring
from services.core.crypto.keys import MasterKey
from services.protocols.transforms.pseudonymise import token

KEY = MasterKey(os.urandom(32)).keyring_key()


@pytest.fixture
def ring(tmp_path: Path) -> PseudonymKeyring:
    return PseudonymKeyring(tmp_path / "keyring.bin", KEY)


def test_given_shredded_epochs_then_their_keys_are_gone_in_every_instance(
        ring: PseudonymKeyring, tmp_path: Path) -> None:
    ring.key_for("police")
    ring.rotate("police")
    ring.rotate("police")
    assert ring.shred("police", 3) == [1, 2]
    assert ring.epochs("police") == [3]
    with pytest.raises(CryptoError, match="epoch 1"):
        ring.key_for("police", 1)
    again = PseudonymKeyring(tmp_path / "keyring.bin", KEY)  # another process, say
    assert again.epochs("police") == [3]
    with pytest.raises(CryptoError, match="epoch 2"):
        again.key_for("police", 2)


def test_given_shredding_then_new_tokens_cannot_be_linked_to_old_ones(
        ring: PseudonymKeyring) -> None:
    e1, k1 = ring.key_for("police")
    old = token(k1, e1, ["jane smith", "1990-01-01"])
    ring.rotate("police")
    ring.shred("police", 2)
    e2, k2 = ring.key_for("police")
    assert token(k2, e2, ["jane smith", "1990-01-01"]) != old
    assert all(token(ring.key_for("police", e)[1], e, ["jane smith", "1990-01-01"]) != old
               for e in ring.epochs("police"))


def test_given_the_current_epoch_then_it_cannot_be_shredded(ring: PseudonymKeyring) -> None:
    ring.key_for("police")
    with pytest.raises(CryptoError, match="current"):
        ring.shred("police", 2)
    assert ring.epochs("police") == [1]


def test_given_an_unknown_protocol_then_shredding_says_so(ring: PseudonymKeyring) -> None:
    with pytest.raises(CryptoError, match="no pseudonym keys"):
        ring.shred("nobody", 2)
