"""Per-protocol pseudonym keys: persistence, epochs and rotation, and the encrypted file."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from services.core.crypto.errors import CryptoError
from services.core.crypto.keyring import PseudonymKeyring
from services.core.crypto.keys import MasterKey

PROTOCOL = "herts-asb-2024"


def _keyring_key() -> bytes:
    return MasterKey(os.urandom(32)).keyring_key()


@pytest.fixture
def key() -> bytes:
    return _keyring_key()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "keyring.enc"


def test_given_first_use_of_a_protocol_then_epoch_1_is_created_and_persisted(
        path: Path, key: bytes) -> None:
    epoch, secret = PseudonymKeyring(path, key).key_for(PROTOCOL)

    assert epoch == 1
    assert len(secret) == 32
    assert PseudonymKeyring(path, key).key_for(PROTOCOL) == (1, secret)


def test_given_two_instances_on_one_file_then_they_return_the_same_key(
        path: Path, key: bytes) -> None:
    ingest, depersonalise = PseudonymKeyring(path, key), PseudonymKeyring(path, key)

    assert ingest.key_for(PROTOCOL) == depersonalise.key_for(PROTOCOL)


def test_given_different_protocols_then_their_keys_differ(path: Path, key: bytes) -> None:
    ring = PseudonymKeyring(path, key)

    assert ring.key_for("herts-asb-2024")[1] != ring.key_for("herts-dv-2024")[1]


def test_given_rotation_then_the_epoch_increments_and_new_records_get_a_new_key(
        path: Path, key: bytes) -> None:
    ring = PseudonymKeyring(path, key)
    _, first = ring.key_for(PROTOCOL)

    assert ring.rotate(PROTOCOL) == 2

    epoch, second = ring.key_for(PROTOCOL)
    assert (epoch, second != first) == (2, True)
    assert ring.key_for(PROTOCOL, epoch=1) == (1, first)
    assert ring.epochs(PROTOCOL) == [1, 2]


def test_given_rotation_in_another_process_then_this_instance_sees_the_new_epoch(
        path: Path, key: bytes) -> None:
    depersonalise = PseudonymKeyring(path, key)
    _, first = depersonalise.key_for(PROTOCOL)  # state now cached in this instance

    rotated = PseudonymKeyring(path, key).rotate(PROTOCOL)

    epoch, current = depersonalise.key_for(PROTOCOL)
    assert (epoch, rotated) == (2, 2)
    assert current != first
    assert depersonalise.key_for(PROTOCOL, epoch=1) == (1, first)


def test_given_rotations_in_two_instances_then_epochs_never_collide(path: Path, key: bytes) -> None:
    a, b = PseudonymKeyring(path, key), PseudonymKeyring(path, key)
    a.key_for(PROTOCOL)

    assert [a.rotate(PROTOCOL), b.rotate(PROTOCOL), a.rotate(PROTOCOL)] == [2, 3, 4]
    assert len({a.key_for(PROTOCOL, epoch=e)[1] for e in a.epochs(PROTOCOL)}) == 4


def test_given_rotation_of_an_unused_protocol_then_it_starts_at_epoch_1(
        path: Path, key: bytes) -> None:
    ring = PseudonymKeyring(path, key)

    assert ring.rotate(PROTOCOL) == 1
    assert ring.key_for(PROTOCOL)[0] == 1


def test_given_an_unknown_protocol_then_epochs_is_empty_and_nothing_is_created(
        path: Path, key: bytes) -> None:
    ring = PseudonymKeyring(path, key)

    assert ring.epochs(PROTOCOL) == []
    assert not path.exists()


@pytest.mark.parametrize("epoch", [0, 2, 99])
def test_given_an_epoch_that_does_not_exist_then_crypto_error(
        path: Path, key: bytes, epoch: int) -> None:
    ring = PseudonymKeyring(path, key)
    ring.key_for(PROTOCOL)

    with pytest.raises(CryptoError, match=f"epoch {epoch}"):
        ring.key_for(PROTOCOL, epoch=epoch)


def test_given_an_explicit_epoch_of_an_unknown_protocol_then_crypto_error_and_no_key_is_made(
        path: Path, key: bytes) -> None:
    ring = PseudonymKeyring(path, key)

    with pytest.raises(CryptoError, match="no pseudonym key"):
        ring.key_for(PROTOCOL, epoch=1)
    assert ring.epochs(PROTOCOL) == []


def test_given_an_empty_protocol_id_then_crypto_error(path: Path, key: bytes) -> None:
    with pytest.raises(CryptoError, match="protocol id"):
        PseudonymKeyring(path, key).key_for("")


def test_given_the_keyring_file_then_it_is_private_and_reveals_neither_protocols_nor_keys(
        path: Path, key: bytes) -> None:
    _, secret = PseudonymKeyring(path, key).key_for(PROTOCOL)

    raw = path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(json.loads(raw)) == {"v", "alg", "nonce", "ct"}
    assert PROTOCOL.encode() not in raw
    assert base64.b64encode(secret) not in raw
    assert secret not in raw


def test_given_the_wrong_master_key_then_opening_the_keyring_fails_with_a_clear_message(
        path: Path, key: bytes) -> None:
    PseudonymKeyring(path, key).key_for(PROTOCOL)

    with pytest.raises(CryptoError, match="wrong master key"):
        PseudonymKeyring(path, _keyring_key())


def test_given_a_tampered_keyring_file_then_crypto_error(path: Path, key: bytes) -> None:
    PseudonymKeyring(path, key).key_for(PROTOCOL)
    envelope = json.loads(path.read_bytes())
    ct = bytearray(base64.b64decode(envelope["ct"]))
    ct[3] ^= 0x80
    path.write_text(json.dumps({**envelope, "ct": base64.b64encode(bytes(ct)).decode()}))

    with pytest.raises(CryptoError, match="altered"):
        PseudonymKeyring(path, key)


@pytest.mark.parametrize("contents", [b"", b"not json", b'{"v": 2}', b"[]"])
def test_given_a_corrupt_keyring_file_then_crypto_error(
        path: Path, key: bytes, contents: bytes) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(contents)

    with pytest.raises(CryptoError, match="corrupt"):
        PseudonymKeyring(path, key)


def test_given_a_keyring_key_of_the_wrong_length_then_crypto_error(path: Path) -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        PseudonymKeyring(path, b"short")


def test_given_many_instances_using_a_new_protocol_at_once_then_all_get_one_key(
        path: Path, key: bytes) -> None:
    rings = [PseudonymKeyring(path, key) for _ in range(12)]
    barrier = threading.Barrier(len(rings))
    got: list[tuple[int, bytes]] = []

    def use(ring: PseudonymKeyring) -> None:
        barrier.wait()
        got.append(ring.key_for(PROTOCOL))

    threads = [threading.Thread(target=use, args=(r,)) for r in rings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(got)) == 1
    assert PseudonymKeyring(path, key).epochs(PROTOCOL) == [1]


def _first_use_in_child(args: tuple[str, bytes, str]) -> tuple[int, bytes]:
    path, key, protocol = args
    return PseudonymKeyring(Path(path), key).key_for(protocol)


def test_given_several_processes_using_new_protocols_at_once_then_none_is_lost_or_duplicated(
        path: Path, key: bytes) -> None:
    jobs = [(str(path), key, f"protocol-{i % 3}") for i in range(12)]

    with multiprocessing.get_context("fork").Pool(6) as pool:
        got = pool.map(_first_use_in_child, jobs)

    ring = PseudonymKeyring(path, key)
    for (_, _, protocol), result in zip(jobs, got, strict=True):
        assert result == ring.key_for(protocol)
        assert ring.epochs(protocol) == [1]
