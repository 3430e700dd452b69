"""Master key loading, key-file generation and sub-key derivation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core.crypto.errors import CryptoError
from services.core.crypto.keys import MasterKey, write_private_file
from services.core.errors import HubError


def _b64_key(n: int = 32) -> tuple[str, bytes]:
    raw = os.urandom(n)
    return base64.b64encode(raw).decode(), raw


def _hkdf(raw: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw)


def test_given_base64_env_value_then_subkeys_are_hkdf_sha256_with_the_documented_labels() -> None:
    value, raw = _b64_key()

    master = MasterKey.from_env_or_file(value, None)

    assert master.kek() == _hkdf(raw, b"s115hub/kek/v1")
    assert master.keyring_key() == _hkdf(raw, b"s115hub/keyring/v1")


def test_given_one_master_key_then_kek_and_keyring_key_differ_from_each_other_and_it() -> None:
    value, raw = _b64_key()
    master = MasterKey.from_env_or_file(value, None)

    assert len({master.kek(), master.keyring_key(), raw}) == 3


def test_given_two_master_keys_then_their_subkeys_differ() -> None:
    first = MasterKey.from_env_or_file(_b64_key()[0], None)
    second = MasterKey.from_env_or_file(_b64_key()[0], None)

    assert first.kek() != second.kek()
    assert first.keyring_key() != second.keyring_key()


def test_given_generated_key_file_then_it_is_private_and_loads_to_the_same_key(
        tmp_path: Path) -> None:
    path = tmp_path / "state" / "master.key"

    generated = MasterKey.generate_file(path)
    loaded = MasterKey.from_env_or_file(None, path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded.kek() == generated.kek()
    assert len(base64.b64decode(path.read_text().strip())) == 32
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporary file left


def test_given_generated_files_then_each_holds_a_different_random_key(tmp_path: Path) -> None:
    first = MasterKey.generate_file(tmp_path / "a.key")
    second = MasterKey.generate_file(tmp_path / "b.key")

    assert first.kek() != second.kek()


def test_given_existing_key_file_then_generate_file_refuses_to_overwrite_it(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    original = MasterKey.generate_file(path)
    before = path.read_bytes()

    with pytest.raises(CryptoError, match="refusing to overwrite"):
        MasterKey.generate_file(path)

    assert path.read_bytes() == before
    assert MasterKey.from_file(path).kek() == original.kek()


def test_given_env_value_and_file_then_env_value_wins(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    MasterKey.generate_file(path)
    value, raw = _b64_key()

    master = MasterKey.from_env_or_file(value, path)

    assert master.kek() == _hkdf(raw, b"s115hub/kek/v1")


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_given_blank_env_value_then_the_file_is_used(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "master.key"
    generated = MasterKey.generate_file(path)

    assert MasterKey.from_env_or_file(blank, path).kek() == generated.kek()


def test_given_env_value_with_surrounding_whitespace_then_it_still_loads() -> None:
    value, raw = _b64_key()

    assert MasterKey.from_env_or_file(f"  {value}\n", None).kek() == _hkdf(raw, b"s115hub/kek/v1")


@pytest.mark.parametrize("bad", ["not base64 at all!", "QUJD=x", "é" * 44])
def test_given_invalid_base64_env_value_then_crypto_error_that_does_not_echo_it(bad: str) -> None:
    with pytest.raises(CryptoError, match="not valid base64") as caught:
        MasterKey.from_env_or_file(bad, None)

    assert bad not in str(caught.value)


@pytest.mark.parametrize("length", [1, 16, 31, 33, 64])
def test_given_env_value_of_wrong_length_then_crypto_error(length: int) -> None:
    with pytest.raises(CryptoError, match=f"32 bytes, got {length}"):
        MasterKey.from_env_or_file(_b64_key(length)[0], None)


def test_given_key_file_of_wrong_length_then_crypto_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(_b64_key(16)[0])

    with pytest.raises(CryptoError, match=f"{path}.*32 bytes, got 16"):
        MasterKey.from_env_or_file(None, path)


def test_given_key_file_with_invalid_base64_then_crypto_error(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"\xff\xfe garbage")

    with pytest.raises(CryptoError, match="not valid base64"):
        MasterKey.from_env_or_file(None, path)


def test_given_missing_key_file_then_crypto_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"

    with pytest.raises(CryptoError, match="does not exist") as caught:
        MasterKey.from_env_or_file(None, path)

    assert str(path) in str(caught.value)


def test_given_no_env_value_and_no_file_then_crypto_error() -> None:
    with pytest.raises(CryptoError, match="no master key configured"):
        MasterKey.from_env_or_file(None, None)


def test_given_raw_bytes_of_wrong_length_then_crypto_error_which_is_a_hub_error() -> None:
    with pytest.raises(HubError):
        MasterKey(b"short")


def test_given_a_master_key_then_its_repr_reveals_nothing() -> None:
    value, raw = _b64_key()
    master = MasterKey.from_env_or_file(value, None)

    assert value not in repr(master)
    assert raw.hex() not in repr(master)


def test_given_an_existing_file_then_exclusive_private_write_keeps_it_and_reports_false(
        tmp_path: Path) -> None:
    path = tmp_path / "k"
    assert write_private_file(path, b"first", overwrite=False) is True

    assert write_private_file(path, b"second", overwrite=False) is False
    assert path.read_bytes() == b"first"
    assert write_private_file(path, b"third", overwrite=True) is True
    assert path.read_bytes() == b"third"
    assert os.listdir(tmp_path) == ["k"]
