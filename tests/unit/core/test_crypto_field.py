"""Envelope encryption of personal fields under per-day data keys, and crypto-shredding."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.crypto import fields as field_crypto
from services.core.crypto.errors import CryptoError
from services.core.crypto.fields import DataKeyShredded, DataKeyStore, key_id_for
from services.core.crypto.keys import MasterKey

DAY = date(2024, 3, 1)
FIELDS: dict[str, Any] = {"name": "Jane Doe", "dob": date(1990, 5, 17), "address": "1 High St"}


def _kek() -> bytes:
    return MasterKey(os.urandom(32)).kek()


@pytest.fixture
def kek() -> bytes:
    return _kek()


@pytest.fixture
def store(tmp_path: Path, kek: bytes) -> DataKeyStore:
    return DataKeyStore(tmp_path, kek)


def _flip(b64: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


# -- sealing and opening ----------------------------------------------------------------------

def test_given_sealed_fields_then_opening_for_the_same_record_returns_them(
        store: DataKeyStore) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)

    assert store.open_sealed(sealed, "rec-1") == {**FIELDS, "dob": "1990-05-17"}


def test_given_sealed_fields_then_the_blob_is_json_with_version_key_id_nonce_and_ciphertext(
        store: DataKeyStore) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)

    assert set(sealed) == {"v", "key_id", "nonce", "ct"}
    assert sealed["v"] == 1
    assert sealed["key_id"] == "dk-2024-03-01"
    assert len(base64.b64decode(sealed["nonce"])) == 12
    encoded = json.dumps(sealed)
    assert "Jane" not in encoded
    assert "High St" not in encoded


def test_given_the_same_fields_sealed_twice_then_nonces_and_ciphertexts_differ(
        store: DataKeyStore) -> None:
    first, second = store.seal(FIELDS, "rec-1", DAY), store.seal(FIELDS, "rec-1", DAY)

    assert first["nonce"] != second["nonce"]
    assert first["ct"] != second["ct"]


def test_given_sealed_blob_moved_to_another_record_then_opening_fails(store: DataKeyStore) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)

    with pytest.raises(CryptoError, match="failed authentication"):
        store.open_sealed(sealed, "rec-2")


def test_given_sealed_blob_relabelled_with_another_days_key_then_opening_fails(
        store: DataKeyStore) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)
    store.seal(FIELDS, "rec-2", DAY + timedelta(days=1))

    with pytest.raises(CryptoError, match="failed authentication"):
        store.open_sealed({**sealed, "key_id": "dk-2024-03-02"}, "rec-1")


@pytest.mark.parametrize(("part", "index"), [("ct", 0), ("ct", -1), ("nonce", 5)])
def test_given_tampered_ciphertext_tag_or_nonce_then_opening_fails(
        store: DataKeyStore, part: str, index: int) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)

    with pytest.raises(CryptoError, match="failed authentication"):
        store.open_sealed({**sealed, part: _flip(sealed[part], index)}, "rec-1")


@pytest.mark.parametrize("mangle", [
    lambda s: {**s, "v": 2},
    lambda s: {k: v for k, v in s.items() if k != "ct"},
    lambda s: {**s, "key_id": "dk-../../etc/passwd"},
    lambda s: {**s, "key_id": "dk-2024-02-30"},
    lambda s: {**s, "nonce": "!!not base64!!"},
    lambda s: {**s, "nonce": base64.b64encode(b"short").decode()},
    lambda s: {**s, "ct": ""},
    lambda s: ["not", "a", "dict"],
])
def test_given_malformed_sealed_blob_then_crypto_error(store: DataKeyStore, mangle: Any) -> None:
    sealed = store.seal(FIELDS, "rec-1", DAY)

    with pytest.raises(CryptoError):
        store.open_sealed(mangle(sealed), "rec-1")


def test_given_a_value_that_is_not_json_able_then_sealing_refuses_it(store: DataKeyStore) -> None:
    with pytest.raises(TypeError, match="bytes"):
        store.seal({"photo": b"\x89PNG"}, "rec-1", DAY)


def test_given_aware_datetime_then_its_utc_date_selects_the_key(store: DataKeyStore) -> None:
    late_evening_bst = datetime(2024, 6, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))

    sealed = store.seal(FIELDS, "rec-1", late_evening_bst)

    assert sealed["key_id"] == "dk-2024-05-31"


def test_given_naive_datetime_then_sealing_refuses_to_guess_the_zone(store: DataKeyStore) -> None:
    with pytest.raises(TypeError, match="naive"):
        store.seal(FIELDS, "rec-1", datetime(2024, 6, 1, 0, 30))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False,
                                                                        allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children,
                                                                      max_size=3),
    max_leaves=10)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.text(), json_values, max_size=5), record_id=st.text(min_size=1))
def test_given_any_json_fields_and_record_id_then_round_trip_is_exact(
        store: DataKeyStore, fields: dict[str, Any], record_id: str) -> None:
    sealed = store.seal(fields, record_id, DAY)

    assert store.open_sealed(json.loads(json.dumps(sealed)), record_id) == fields
    with pytest.raises(CryptoError):
        store.open_sealed(sealed, record_id + "x")


# -- data keys ----------------------------------------------------------------------------------

def test_given_two_days_then_their_data_keys_differ(store: DataKeyStore) -> None:
    store.seal(FIELDS, "rec-1", DAY)
    store.seal(FIELDS, "rec-2", DAY + timedelta(days=1))

    assert store.fingerprint("dk-2024-03-01") != store.fingerprint("dk-2024-03-02")
    assert store.key_ids() == ["dk-2024-03-01", "dk-2024-03-02"]


def test_given_sealing_then_the_day_key_file_is_private_and_holds_only_a_wrapped_key(
        tmp_path: Path, store: DataKeyStore) -> None:
    store.seal(FIELDS, "rec-1", DAY)
    path = tmp_path / "datakeys" / "2024-03-01.key"

    doc = json.loads(path.read_bytes())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert doc["key_id"] == "dk-2024-03-01"
    assert len(base64.b64decode(doc["wrapped"])) == 32 + 16  # key plus GCM tag


def test_given_two_store_instances_on_one_directory_then_they_share_the_day_key(
        tmp_path: Path, kek: bytes) -> None:
    ingest, depersonalise = DataKeyStore(tmp_path, kek), DataKeyStore(tmp_path, kek)

    sealed = ingest.seal(FIELDS, "rec-1", DAY)

    assert depersonalise.open_sealed(sealed, "rec-1")["name"] == "Jane Doe"
    assert depersonalise.fingerprint("dk-2024-03-01") == ingest.fingerprint("dk-2024-03-01")


def test_given_many_instances_creating_one_day_at_once_then_exactly_one_key_wins(
        tmp_path: Path, kek: bytes) -> None:
    stores = [DataKeyStore(tmp_path, kek) for _ in range(16)]
    barrier = threading.Barrier(len(stores))
    sealed: dict[int, dict[str, Any]] = {}

    def create(i: int) -> None:
        barrier.wait()
        sealed[i] = stores[i].seal(FIELDS, f"rec-{i}", DAY)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len({s.fingerprint("dk-2024-03-01") for s in stores}) == 1
    assert os.listdir(tmp_path / "datakeys") == ["2024-03-01.key"]
    fresh = DataKeyStore(tmp_path, kek)
    assert all(fresh.open_sealed(sealed[i], f"rec-{i}")["name"] == "Jane Doe" for i in sealed)


def test_given_another_process_creates_the_key_just_after_this_one_looked_then_its_key_is_used(
        tmp_path: Path, kek: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    winner, loser = DataKeyStore(tmp_path, kek), DataKeyStore(tmp_path, kek)
    sealed_by_winner = winner.seal(FIELDS, "rec-1", DAY)
    real_identity = field_crypto.file_identity
    looks = iter([None])  # the loser's first look happened before the winner's file landed
    monkeypatch.setattr(field_crypto, "file_identity", lambda p: next(looks, real_identity(p)))

    sealed_by_loser = loser.seal(FIELDS, "rec-2", DAY)

    assert loser.fingerprint("dk-2024-03-01") == winner.fingerprint("dk-2024-03-01")
    assert winner.open_sealed(sealed_by_loser, "rec-2")["name"] == "Jane Doe"
    assert loser.open_sealed(sealed_by_winner, "rec-1")["name"] == "Jane Doe"
    assert os.listdir(tmp_path / "datakeys") == ["2024-03-01.key"]


def _seal_in_child(args: tuple[str, bytes, int]) -> dict[str, Any]:
    directory, kek, i = args
    return DataKeyStore(Path(directory), kek).seal(FIELDS, f"rec-{i}", DAY)


def test_given_several_processes_creating_one_day_at_once_then_all_seal_under_one_key(
        tmp_path: Path, kek: bytes) -> None:
    with multiprocessing.get_context("fork").Pool(6) as pool:
        sealed = pool.map(_seal_in_child, [(str(tmp_path), kek, i) for i in range(12)])

    fresh = DataKeyStore(tmp_path, kek)
    names = [fresh.open_sealed(s, f"rec-{i}")["name"] for i, s in enumerate(sealed)]
    assert names == ["Jane Doe"] * 12
    assert os.listdir(tmp_path / "datakeys") == ["2024-03-01.key"]


def test_given_another_master_key_then_opening_the_store_fails_at_start_up(
        tmp_path: Path, kek: bytes) -> None:
    DataKeyStore(tmp_path, kek).seal(FIELDS, "rec-1", DAY)

    with pytest.raises(CryptoError, match="wrong master key"):
        DataKeyStore(tmp_path, _kek())


def test_given_key_file_renamed_to_another_day_then_it_does_not_unwrap(
        tmp_path: Path, kek: bytes) -> None:
    DataKeyStore(tmp_path, kek).seal(FIELDS, "rec-1", DAY)
    keys = tmp_path / "datakeys"
    (keys / "2024-03-01.key").rename(keys / "2024-03-09.key")

    with pytest.raises(CryptoError):
        DataKeyStore(tmp_path, kek)


# -- shredding -----------------------------------------------------------------------------------

def test_given_shred_before_a_day_then_earlier_days_are_unreadable_and_later_days_readable(
        tmp_path: Path, kek: bytes) -> None:
    store = DataKeyStore(tmp_path, kek)
    days = [DAY + timedelta(days=n) for n in range(4)]
    sealed = {d: store.seal(FIELDS, f"rec-{d}", d) for d in days}

    shredded = store.shred_before(days[2])

    assert shredded == ["dk-2024-03-01", "dk-2024-03-02"]
    for reader in (store, DataKeyStore(tmp_path, kek)):
        for d in days[:2]:
            with pytest.raises(CryptoError, match=f"data key {key_id_for(d)} has been shredded"):
                reader.open_sealed(sealed[d], f"rec-{d}")
        for d in days[2:]:
            assert reader.open_sealed(sealed[d], f"rec-{d}")["name"] == "Jane Doe"


def test_given_another_process_shreds_then_a_store_with_the_key_cached_cannot_read_it(
        tmp_path: Path, kek: bytes) -> None:
    depersonalise = DataKeyStore(tmp_path, kek)
    sealed = depersonalise.seal(FIELDS, "rec-1", DAY)
    assert depersonalise.open_sealed(sealed, "rec-1")  # key now cached in this instance

    DataKeyStore(tmp_path, kek).shred_before(DAY + timedelta(days=1))

    with pytest.raises(DataKeyShredded, match="dk-2024-03-01 has been shredded"):
        depersonalise.open_sealed(sealed, "rec-1")


def test_given_shredding_then_the_key_bytes_are_overwritten_before_unlinking(
        tmp_path: Path, store: DataKeyStore) -> None:
    store.seal(FIELDS, "rec-1", DAY)
    # A second name for the same inode lets the test see what the shred wrote there.
    witness = tmp_path / "witness"
    os.link(tmp_path / "datakeys" / "2024-03-01.key", witness)

    store.shred_before(DAY + timedelta(days=1))

    assert not (tmp_path / "datakeys" / "2024-03-01.key").exists()
    contents = witness.read_bytes()
    assert contents
    assert set(contents) == {0}


def test_given_a_shredded_day_then_a_late_record_for_it_is_refused_not_given_a_new_key(
        tmp_path: Path, kek: bytes) -> None:
    DataKeyStore(tmp_path, kek).seal(FIELDS, "rec-1", DAY)
    DataKeyStore(tmp_path, kek).shred_before(DAY + timedelta(days=1))

    with pytest.raises(DataKeyShredded, match="past retention"):
        DataKeyStore(tmp_path, kek).seal(FIELDS, "rec-late", DAY)

    assert DataKeyStore(tmp_path, kek).key_ids() == []


def test_given_a_later_shred_with_an_earlier_cutoff_then_the_watermark_is_not_lowered(
        tmp_path: Path, store: DataKeyStore) -> None:
    store.shred_before(DAY + timedelta(days=10))
    store.shred_before(DAY)

    with pytest.raises(DataKeyShredded):
        store.seal(FIELDS, "rec-1", DAY + timedelta(days=5))


def test_given_stray_temporary_key_files_then_shredding_removes_those_of_shredded_days(
        tmp_path: Path, store: DataKeyStore) -> None:
    keys = tmp_path / "datakeys"
    (keys / ".2024-03-01.key.0123abcd.tmp").write_bytes(b"wrapped key of a crashed creator")
    (keys / ".2024-03-05.key.0123abcd.tmp").write_bytes(b"still in retention")

    assert store.shred_before(DAY + timedelta(days=1)) == []
    assert sorted(os.listdir(keys)) == [".2024-03-05.key.0123abcd.tmp", "shredded-before"]


def test_given_nothing_before_the_cutoff_then_shredding_returns_nothing(
        store: DataKeyStore) -> None:
    store.seal(FIELDS, "rec-1", DAY)

    assert store.shred_before(DAY) == []
    assert store.key_ids() == ["dk-2024-03-01"]


def test_given_a_shredded_key_then_fingerprint_reports_it_shredded(store: DataKeyStore) -> None:
    store.seal(FIELDS, "rec-1", DAY)
    store.shred_before(DAY + timedelta(days=1))

    with pytest.raises(DataKeyShredded):
        store.fingerprint("dk-2024-03-01")
