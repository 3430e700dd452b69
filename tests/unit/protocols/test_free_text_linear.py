"""The free-text path does work linear in its input, whatever the input: proved by counting the
release's elementary steps on hypothesis-generated adversarial text, not by a clock (the wall-time
figure is in ``bench/free_text_cost.py``)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.protocols.transforms.free_text import lists_for
from services.protocols.transforms.free_text_normalise import normalise
from services.protocols.transforms.free_text_record import record_words
from services.protocols.transforms.free_text_tags import find_tags
from services.protocols.transforms.free_text_vocabulary import Meter, Release
from services.protocols.vocabularies import load_tagset

LISTS = lists_for(["incident-en@1", "towns-east@1"])
TAGSET = load_tagset("mo-tags@1")
#: Pieces the issue's adversarial record was made of, and a few more: separator runs, "-1",
#: "a…a@a", "1/1/", deep punctuation, invisible and combining characters, full-width letters.
PIECES = ["-", "-1", ".", "/", "1/1/", "@", "a", "aaaa", " ", "_", ",", "(", ")", "'", "\n",
          "\u200b", "\u0301", "\u0327", "Ａ", "é", "Mr", "Smith", "road", "forced", "door", "…"]
adversarial = st.lists(st.sampled_from(PIECES), max_size=1500).map("".join).map(
    lambda s: s[:4000])
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
#: Steps per input character: the tokeniser touches each character once, the renderer each
#: piece once, the name pass each piece once; pieces are never more than three per character.
PER_CHAR = 8


def _release(text: str, name: str, address: str) -> tuple[str, Meter]:
    record = {"victim_name": name, "address": address, "summary": text}
    own = record_words(record, record, skip={"summary"}, places=LISTS.places)
    meter = Meter()
    return Release(LISTS, own, meter).run(text), meter


class TestLinearWork:
    @SETTINGS
    @given(text=adversarial, name=adversarial, address=adversarial)
    def test_given_adversarial_text_and_fields_then_release_steps_are_linear(
            self, text: str, name: str, address: str) -> None:
        out, meter = _release(text, name, address)
        n = len(normalise(text))
        assert meter.steps <= PER_CHAR * (n + 1), (meter.steps, n)
        assert len(out) <= 8 * (n + 1)  # placeholders are the longest thing written per char

    @SETTINGS
    @given(text=adversarial)
    def test_given_adversarial_text_then_tag_matching_steps_are_linear(self, text: str) -> None:
        meter = Meter()
        find_tags(text, TAGSET, meter)
        assert meter.steps <= TAGSET.longest * (len(normalise(text)) + 1)

    def test_given_the_issues_4000_character_record_then_steps_stay_linear(self) -> None:
        worst = ["." * 4000, "-1" * 2000, "a" * 3998 + "@a", "1/1/" * 1000,
                 "(" * 2000 + ")" * 2000, ". - , " * 666, "\u200b" * 4000, "e\u0301" * 2000]
        for text in worst:
            out, meter = _release(text, text[:200], text[:300])
            assert meter.steps <= PER_CHAR * (len(text) + 1), (text[:10], meter.steps)
            assert "@" not in out
            assert "1" not in out

    def test_given_a_long_run_of_combining_marks_then_normalisation_keeps_two(self) -> None:
        assert normalise("e" + "\u0301" * 4000) == "e"
