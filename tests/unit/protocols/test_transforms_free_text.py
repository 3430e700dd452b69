"""``free_text``: drop, vocabulary (allow-list release) and tags; ``scrub`` refused."""

from __future__ import annotations

from datetime import date

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, get_transform
from tests.unit.protocols.transform_ctx import make_ctx, refusal

ft = get_transform("free_text")
VOCAB = {"mode": "vocabulary", "vocabulary": ["incident-en@1", "towns-east@1"]}
TAGS = {"mode": "tags", "tagset": "mo-tags@1"}
RECORD = {
    "victim_name": "Will Rose", "victim_dob": date(1990, 2, 1),
    "address": "14 Oakfield Way, Stevenage, SG1 4QR",
    "summary": "Will Rose (dob 01/02/1990) said the suspect will return to 14 Oakfield Way.",
}


def release(text: str, record: dict[str, object] | None = None) -> str:
    out = ft.apply(text, VOCAB, make_ctx(record or {"summary": text}))
    assert isinstance(out, str)
    return out


class TestModes:
    @pytest.mark.parametrize("params", [{}, {"mode": "drop"}])
    def test_given_drop_or_no_mode_then_the_text_is_dropped(self, params: dict[str, str]) -> None:
        assert ft.apply(RECORD["summary"], params, make_ctx(RECORD)) is DROP

    def test_given_vocabulary_then_the_records_own_values_go_and_listed_words_stay(self) -> None:
        out = ft.apply(RECORD["summary"], VOCAB, make_ctx(RECORD))
        assert out == "[NAME] ([NUMBER]) said the suspect will return to [PLACE]."

    def test_given_tags_then_only_tags_are_released(self) -> None:
        out = ft.apply("Forced the rear door of Will Rose's shed at night", TAGS,
                       make_ctx(RECORD))
        assert out == ["entry-method:forced", "point-of-entry:rear-door", "point-of-entry:shed",
                       "time-cue:night"]

    @pytest.mark.parametrize("value", [None, 42, ["text"]])
    def test_given_something_that_is_not_text_then_the_field_is_dropped(
            self, value: object) -> None:
        assert ft.apply(value, VOCAB, make_ctx(RECORD)) is DROP


class TestVocabularyRelease:
    @pytest.mark.parametrize(("text", "expected"), [
        ("ring 7700900123 or 07700 900 123", "ring [NUMBER] or [NUMBER]"),
        ("mail jo.b@x.com or @jdoe_99", "mail [CONTACT] or [CONTACT]"),
        ("pin ///filled.count.soap", "pin [PLACE]"),
        ("file ab_cd and e.g. x/y", "file [?] and [?]. [?]"),
        ("Witness Grace Okafor saw it", "Witness [NAME] saw it"),
        ("spoke to grace okafor", "spoke to [NAME]"),
        ("Nurse Pemberton and Cllr Strong arrived", "Nurse [NAME] and Cllr [NAME] arrived"),
        ("a male known as Smudge ran", "a male known as [?] ran"),
        ("fled along Larkspur Avenue", "fled along [PLACE]"),
        ("fled along larkspur road", "fled along [PLACE] road"),
        ("pupil at Oakfield Academy", "pupil at [PLACE]"),
        ("she was in Watford and Hemel Hempstead", "she was in Watford and Hemel Hempstead"),
    ])
    def test_given_text_then_only_listed_words_are_released(self, text: str,
                                                           expected: str) -> None:
        assert release(text) == expected

    def test_given_a_name_with_zero_width_characters_then_it_is_still_a_name(self) -> None:
        assert release("victim Gra\u200bce Oka\u200dfor") == "victim [NAME]"

    def test_given_look_alike_letters_then_they_are_folded_or_unknown(self) -> None:
        assert release("friend Grаce Okаfor left") == "friend [NAME] left"  # Cyrillic а
        assert release("her cousin محمد visited") == "her cousin [?] visited"

    def test_given_a_name_split_by_a_line_break_or_hyphen_then_no_half_is_released(self) -> None:
        assert release("mother Grace Oka-\nfor arrived") == "mother [NAME] arrived"

    def test_given_a_victim_called_will_then_the_verb_survives_and_the_name_does_not(
            self) -> None:
        out = release("Will said he will return; a rose was cut", RECORD)
        assert out == "[NAME] said he will return; a [NAME] was cut"

    def test_given_a_town_in_the_records_own_address_then_the_town_is_not_removed(self) -> None:
        out = release("Seen in Stevenage town centre near oakfield way", RECORD)
        assert out == "Seen in Stevenage town centre near [PLACE] way"

    def test_given_covid_19_then_the_word_survives_where_it_is_lower_case(self) -> None:
        assert release("covid-19 rules") == "covid-[NUMBER] rules"

    def test_given_dates_of_birth_and_ages_in_words_then_they_go(self) -> None:
        assert release("born on the third of March nineteen eighty, aged fourteen") == \
            "born on the [?] of [NAME], aged [?]"

    def test_given_long_punctuation_runs_then_at_most_three_marks_are_kept(self) -> None:
        assert release("stop!!!!!!!! ........ now") == "stop!!! ... now"


class TestValidate:
    @pytest.mark.parametrize("params", [{}, {"mode": "drop"}, VOCAB, TAGS,
                                        {"mode": "vocabulary", "vocabulary": "incident-en@1"}])
    def test_given_valid_parameters_then_they_validate(self, params: dict[str, str]) -> None:
        assert refusal(ft, params) is None

    def test_given_scrub_then_it_is_refused_naming_vocabulary_and_tags(self) -> None:
        with pytest.raises(ConfigError, match=r"scrub.*'vocabulary'.*'tags'.*\(field mode\)"):
            ft.validate({"mode": "scrub"})

    @pytest.mark.parametrize("mode", ["redact", "keep", "", None, True])
    def test_given_an_unknown_mode_then_error_raised(self, mode: object) -> None:
        with pytest.raises(ConfigError, match=r"must be one of drop, vocabulary, tags"):
            ft.validate({"mode": mode})

    @pytest.mark.parametrize(("params", "message"), [
        ({"mode": "vocabulary"}, r"needs 'vocabulary'.*\(field vocabulary\)"),
        ({"mode": "vocabulary", "vocabulary": "nope@1"}, r"no shipped list 'nope@1'; available"),
        ({"mode": "vocabulary", "vocabulary": "incident-en"}, r"id@version"),
        ({"mode": "vocabulary", "vocabulary": ["incident-en@1", 3]}, r"id@version"),
        ({"mode": "vocabulary", "vocabulary": "mo-tags@1"}, r"no shipped list"),
        ({"mode": "tags"}, r"needs 'tagset'"),
        ({"mode": "tags", "tagset": "incident-en@1"}, r"no shipped list"),
        ({"mode": "tags", "tagset": "mo-tags@1", "vocabulary": "incident-en@1"},
         r"'vocabulary' is for mode 'vocabulary'"),
        ({"mode": "drop", "tagset": "mo-tags@1"}, r"takes no list"),
        ({"mode": "tags", "tagset": "mo-tags@1", "patterns": ["nhs"]},
         r"unknown parameter 'patterns'"),
    ])
    def test_given_bad_list_parameters_then_error_raised(self, params: dict[str, object],
                                                         message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            ft.validate(params)
