"""The scrubbing functions on their own: record-aware terms, generic patterns, merging."""

from __future__ import annotations

from datetime import date

import pytest

from services.depersonalise.transforms.free_text_patterns import (
    Span,
    field_kind,
    merge,
    nhs_check_digit_ok,
    redact,
    scrub,
)

PERSON = {
    "victim_name": "John Smith",
    "victim_dob": date(1990, 2, 1),
    "address": "12 High Street, Stevenage, SG1 2AB",
    "occupier_phone": "01234 567890",
    "reporter_email": "john.smith88@example.com",
    "nhs_number": "943 476 5919",
    "location": {"lat": 51.903456, "lon": -0.196789},
    "summary": "placeholder",
}


def s(text: str, record: dict[str, object] | None = None) -> str:
    record = PERSON if record is None else record
    return scrub(text, record, set(record), "summary")


class TestRecordNames:
    @pytest.mark.parametrize(("text", "expected"), [
        ("John Smith was hit", "[NAME] was hit"),
        ("JOHN  SMITH was hit", "[NAME] was hit"),
        ("Smith, John was hit", "[NAME] was hit"),
        ("smith john was hit", "[NAME] was hit"),
        ("Smith said", "[NAME] said"),
        ("john said", "[NAME] said"),
        ("Smith's car", "[NAME]'s car"),
        ("J. Smith", "J. [NAME]"),
    ])
    def test_given_the_records_name_in_any_form_then_it_is_replaced(
            self, text: str, expected: str) -> None:
        assert s(text) == expected

    def test_given_a_name_token_inside_another_word_then_it_is_left_alone(self) -> None:
        assert s("Johnson and Smithfield") == "Johnson and Smithfield"

    def test_given_a_hyphenated_name_then_each_part_is_replaced(self) -> None:
        rec = {"victim_name": "Siobhán O'Brien-Jones"}
        assert s("Jones met siobhan and OBrien-Jones and O’Brien", rec) == (
            "[NAME] met [NAME] and [NAME] and [NAME]")

    def test_given_a_two_letter_surname_then_it_is_replaced_but_english_words_are_not(
            self) -> None:
        rec = {"suspect_name": "Mr Wei Wu"}
        assert s("Wu, Wei left. Wu is in Hitchin", rec) == "[NAME] left. [NAME] is in Hitchin"


class TestRecordContacts:
    @pytest.mark.parametrize("text", [
        "call 01234 567890", "call 01234567890", "call 01234-567-890", "call (01234) 567 890",
        "call +44 1234 567890", "call +44 (0)1234 567890", "call 0044 1234 567890",
    ])
    def test_given_the_records_phone_with_any_spacing_then_it_is_replaced(self, text: str) -> None:
        assert s(text) == "call [PHONE]"

    def test_given_the_records_email_in_any_case_then_it_is_replaced(self) -> None:
        assert s("wrote JOHN.SMITH88@EXAMPLE.COM and john.smith88 online") == (
            "wrote [EMAIL] and [EMAIL] online")

    @pytest.mark.parametrize("text", ["nhs 943 476 5919", "nhs 9434765919", "nhs 943-476-5919"])
    def test_given_the_records_nhs_number_then_it_is_replaced(self, text: str) -> None:
        assert s(text) == "nhs [NHS_NUMBER]"


class TestRecordDob:
    @pytest.mark.parametrize("text", [
        "01/02/1990", "1/2/1990", "01-02-1990", "01.02.90", "1990-02-01", "1 Feb 1990",
        "1st February 1990", "1st of February, 1990", "February 1, 1990", "Feb 1st 1990",
        "01021990", "February 1990",
    ])
    def test_given_the_records_dob_in_a_common_format_then_it_is_replaced(self, text: str) -> None:
        assert s(f"born {text}.") == "born [DATE]."

    def test_given_a_dob_held_as_an_iso_string_then_it_is_still_found(self) -> None:
        assert s("born 1 Feb 1990", {"patient_dob": "1990-02-01"}) == "born [DATE]"


class TestRecordAddress:
    def test_given_the_whole_address_with_other_punctuation_then_it_is_one_placeholder(
            self) -> None:
        assert s("lives at 12 high street stevenage sg1 2ab now") == "lives at [ADDRESS] now"

    def test_given_parts_of_the_address_then_each_is_replaced(self) -> None:
        assert s("seen on High Street in Stevenage") == "seen on [ADDRESS] in [ADDRESS]"

    def test_given_another_free_text_fields_value_then_it_is_replaced_whole(self) -> None:
        rec = {"location_description": "outside the Red Lion", "notes": "x"}
        assert scrub("hit outside the red lion", rec, set(rec), "notes") == "hit [PERSONAL]"


class TestPatterns:
    @pytest.mark.parametrize(("text", "label"), [
        ("NHS 401 023 2137", "NHS_NUMBER"), ("NHS 4010232137", "NHS_NUMBER"),
        ("NI QQ 12 34 56 C", "NI_NUMBER"), ("NI ab123456c", "NI_NUMBER"),
        ("tel 07700 900123", "PHONE"), ("tel +44 7700 900123", "PHONE"),
        ("tel 020 7946 0018", "PHONE"), ("tel 01632-960-001", "PHONE"),
        ("mail a.b+c@mail.example.org", "EMAIL"), ("at LU1 3JU", "POSTCODE"),
        ("at ec1a1bb", "POSTCODE"), ("car AB12 CDE", "VRM"), ("car ab12cde", "VRM"),
        ("car K123 ABC", "VRM"), ("car ABC 123D", "VRM"), ("on 07/03/2024", "DATE"),
        ("on 2024-03-07", "DATE"), ("on 7th March 2024", "DATE"), ("on March 7", "DATE"),
        ("at 3 Acacia Avenue", "ADDRESS"), ("at Flat 2, 45 Bedwell Crescent", "ADDRESS"),
        ("by Mrs Okafor", "NAME"), ("by PC Jane Doe", "NAME"),
        ("at 51.90345, -0.19678", "LOCATION"),
    ])
    def test_given_a_generic_identifier_then_it_is_replaced_by_its_type(
            self, text: str, label: str) -> None:
        head = text.split(" ", 1)[0]
        assert scrub(text) == f"{head} [{label}]"

    def test_given_a_ten_digit_number_with_a_bad_check_digit_then_it_is_not_an_nhs_number(
            self) -> None:
        assert scrub("ref 401 023 2138") == "ref 401 023 2138"

    @pytest.mark.parametrize("text", [
        "Three men on the road at 14:30 near junction 8 of the A1(M).",
        "Crime reference 41/12345/24, 2 people, 1.5 miles away.",
        "Stab wound to the left arm, aged approximately 30.",
    ])
    def test_given_text_without_identifiers_then_it_is_unchanged(self, text: str) -> None:
        assert scrub(text) == text


class TestNhsCheckDigit:
    @pytest.mark.parametrize("number", ["9434765919", "4010232137", "9999999999"])
    def test_given_a_valid_nhs_number_then_the_check_digit_passes(self, number: str) -> None:
        assert nhs_check_digit_ok(number)

    @pytest.mark.parametrize("number", ["9434765918", "123456789", "abcdefghij", "1000000010"])
    def test_given_an_invalid_nhs_number_then_the_check_digit_fails(self, number: str) -> None:
        # 1000000010: weighted sum leaves remainder 1, so the check digit would be 10: never valid.
        assert not nhs_check_digit_ok(number)


class TestMerge:
    def test_given_overlapping_spans_then_they_merge_under_the_longest_label(self) -> None:
        spans = [Span(0, 5, "NAME"), Span(3, 15, "ADDRESS"), Span(20, 25, "DATE")]
        assert merge(spans) == [Span(0, 15, "ADDRESS"), Span(20, 25, "DATE")]

    def test_given_a_placeholder_already_written_then_no_later_term_can_match_it(self) -> None:
        rec = {"victim_name": "Name Date"}  # names that equal placeholder words
        assert s("Name Date was born 01/02/1990", rec) == "[NAME] was born [DATE]"

    def test_given_spans_then_redact_replaces_each_with_its_placeholder(self) -> None:
        assert redact("abc def", [Span(4, 7, "NAME")]) == "abc [NAME]"


class TestFieldKind:
    @pytest.mark.parametrize(("name", "value", "kind"), [
        ("victim_name", "x", "NAME"), ("suspect_dob", "1990-01-01", "DATE"),
        ("patient_dob", date(1990, 1, 1), "DATE"), ("reporter_email", "a@b.co", "EMAIL"),
        ("occupier_phone", "0", "PHONE"), ("nhs_number", "1", "NHS_NUMBER"),
        ("patient_postcode", "SG1", "POSTCODE"), ("reporter_address", "1 A St", "ADDRESS"),
        ("location", {"lat": 1, "lon": 2}, "LOCATION"), ("contact", "x@y.org", "EMAIL"),
        ("contact", "07700 900123", "PHONE"), ("notes", "free words", None),
    ])
    def test_given_a_field_then_its_kind_comes_from_type_name_or_shape(
            self, name: str, value: object, kind: str | None) -> None:
        assert field_kind(name, value) == kind


@pytest.mark.parametrize("token", ["CANARY000001X00004", "HT-2024-0031", "AB123456X", "ref9x8y7z"])
def test_given_a_reference_like_token_then_it_is_scrubbed(token: str) -> None:
    from services.depersonalise.transforms.free_text_patterns import pattern_spans

    text = f"seen by staff, see {token} for details"
    assert [text[s.start:s.end] for s in pattern_spans(text)] == [token]


@pytest.mark.parametrize("text", ["at 10pm on the A414 near M25 J21", "2nd floor, 10-15 youths",
                                  "CAD 1234 logged"])
def test_given_short_mixed_tokens_then_they_are_kept(text: str) -> None:
    from services.depersonalise.transforms.free_text_patterns import pattern_spans

    assert pattern_spans(text) == []
