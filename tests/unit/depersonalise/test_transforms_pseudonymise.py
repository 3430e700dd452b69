from __future__ import annotations

import base64
import hashlib
import re
from datetime import date
from typing import ClassVar

import pytest

from services.core.config.errors import ConfigError
from services.core.crypto.errors import CryptoError
from services.protocols.transforms import DROP, get_transform
from services.protocols.transforms.pseudonymise import normalise
from tests.unit.depersonalise import OTHER_KEY, TEST_KEY, make_ctx

pseudo = get_transform("pseudonymise")
TOKEN = re.compile(r"^p3_[A-Z2-7]{20}$")


def tok(value: object, *, key: bytes | None = TEST_KEY, epoch: int | None = 3,
        params: dict[str, object] | None = None, record: dict[str, object] | None = None) -> object:
    return pseudo.apply(value, params or {}, make_ctx(record, key=key, epoch=epoch))


class TestToken:
    def test_given_a_value_then_the_token_is_p_epoch_and_20_base32_chars(self) -> None:
        assert TOKEN.match(str(tok("John Smith")))

    def test_given_the_same_person_spelt_differently_then_the_token_is_the_same(self) -> None:
        assert tok("John  Smith") == tok(" john smith ") == tok("JOHN\tSMITH")

    def test_given_numbers_with_different_spacing_then_the_token_is_the_same(self) -> None:
        assert tok("943 476 5919") == tok("9434765919") == tok("943-476-5919")
        assert tok("+44 (0)1234 567890") == tok("01234 567890") == tok("0044 1234 567890")

    def test_given_a_date_object_or_its_iso_string_then_the_token_is_the_same(self) -> None:
        assert tok(date(1990, 2, 1)) == tok("1990-02-01")

    def test_given_different_people_then_the_tokens_differ(self) -> None:
        assert tok("John Smith") != tok("Jane Smith")

    def test_given_a_different_protocol_key_then_the_token_is_unlinkable(self) -> None:
        assert tok("John Smith", key=OTHER_KEY) != tok("John Smith")

    def test_given_a_different_epoch_then_the_prefix_says_so(self) -> None:
        assert str(tok("John Smith", epoch=4)).startswith("p4_")

    def test_given_a_value_then_the_token_is_not_a_bare_hash_of_it(self) -> None:
        body = str(tok("john smith")).split("_", 1)[1]
        for digest in (hashlib.sha256(b"john smith").digest(),
                       hashlib.sha256(b"John Smith").digest()):
            assert body != base64.b32encode(digest).decode()[:20]
            assert body.casefold() not in digest.hex()

    def test_given_none_then_the_field_is_dropped(self) -> None:
        assert tok(None) is DROP

    def test_given_a_blank_string_then_the_field_is_dropped(self) -> None:
        assert tok("   ") is DROP

    def test_given_normalise_then_case_and_whitespace_are_folded(self) -> None:
        assert normalise("  Zoë\u00a0 SMITH ") == "zoë smith"


class TestWith:
    RECORD: ClassVar[dict[str, object]] = {"victim_name": "John Smith",
                                            "victim_dob": date(1990, 2, 1)}

    def test_given_with_dob_then_two_people_sharing_a_name_get_different_tokens(self) -> None:
        other = {**self.RECORD, "victim_dob": date(1985, 7, 9)}
        params: dict[str, object] = {"with": ["victim_dob"]}
        assert tok("John Smith", params=params, record=self.RECORD) != tok(
            "John Smith", params=params, record=other)

    def test_given_with_then_the_token_differs_from_the_name_alone(self) -> None:
        assert tok("John Smith", params={"with": ["victim_dob"]}, record=self.RECORD) != tok(
            "John Smith")

    def test_given_with_a_missing_field_then_the_field_is_dropped(self) -> None:
        params: dict[str, object] = {"with": ["victim_dob"]}
        assert tok("John Smith", params=params, record={"victim_name": "John Smith"}) is DROP

    def test_given_with_the_same_identity_written_differently_then_token_is_same(self) -> None:
        params: dict[str, object] = {"with": ["victim_dob"]}
        again: dict[str, object] = {"victim_dob": "1990-02-01"}
        assert tok("JOHN SMITH", params=params, record=again) == tok(
            "John Smith", params=params, record=self.RECORD)


class TestKeyErrors:
    def test_given_no_key_then_crypto_error_raised(self) -> None:
        with pytest.raises(CryptoError, match="no pseudonym key for protocol csp-herts@1"):
            tok("John Smith", key=None)

    def test_given_an_empty_key_then_crypto_error_raised(self) -> None:
        with pytest.raises(CryptoError, match="no pseudonym key"):
            tok("John Smith", key=b"")

    def test_given_an_invalid_length_key_then_error_raised(self) -> None:
        with pytest.raises(CryptoError, match="shorter than 16 bytes"):
            tok("John Smith", key=b"short")

    def test_given_a_key_that_is_not_bytes_then_crypto_error_raised(self) -> None:
        with pytest.raises(CryptoError, match="no pseudonym key"):
            tok("John Smith", key="a" * 32)  # type: ignore[arg-type]

    def test_given_no_key_epoch_then_crypto_error_raised(self) -> None:
        with pytest.raises(CryptoError, match="no key epoch for protocol csp-herts@1"):
            tok("John Smith", epoch=None)

    def test_given_no_key_and_a_none_value_then_the_missing_key_still_raises(self) -> None:
        with pytest.raises(CryptoError):
            tok(None, key=None)


class TestValidate:
    def test_given_no_parameters_then_they_validate(self) -> None:
        pseudo.validate({})

    def test_given_a_list_of_fields_then_they_validate(self) -> None:
        pseudo.validate({"with": ["victim_dob", "address"]})

    @pytest.mark.parametrize(("value", "message"), [
        ("victim_dob", "must be a non-empty list of field names"),
        ([], "must be a non-empty list of field names"),
        (["a", "b", "c", "d", "e", "f"], "at most 5 fields"),
        ([3], "not a field name: 3"),
        (["Victim DOB"], "not a field name: 'Victim DOB'"),
        (["victim_dob", "victim_dob"], "lists a field twice"),
    ])
    def test_given_a_bad_with_then_error_raised(self, value: object, message: str) -> None:
        with pytest.raises(ConfigError, match=re.escape(message)) as err:
            pseudo.validate({"with": value})
        assert err.value.field == "with"

    def test_given_an_unknown_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'salt'.*allowed: with"):
            pseudo.validate({"salt": "x"})
