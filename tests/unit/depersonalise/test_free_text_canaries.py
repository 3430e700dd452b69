"""The canary corpus (``bench/canary_corpus.py``) through the depersonalise stage with the shipped
Hertfordshire protocols and their vocabulary and tags variants: nothing planted is released, in
any mode that releases text, and the analyst still gets what tasking needs."""

from __future__ import annotations

from typing import Any

import pytest

from bench.free_text_leaks import MODES, run

#: 110 records per feed x 5 planted details: 2,200 planted details.
PER_FEED = 110


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run(seed=11, per_feed=PER_FEED)


def test_given_the_corpus_then_it_plants_at_least_2000_details_of_at_least_25_kinds(
        report: dict[str, Any]) -> None:
    assert report["planted"] >= 2000
    assert report["kinds"] >= 25
    assert all(n >= 20 for n in report["planted_per_kind"].values()), report["planted_per_kind"]


def test_given_every_mode_then_text_was_released_and_no_planted_detail_got_through(
        report: dict[str, Any]) -> None:
    # Shipped: police and fire release tags; the variants release every free-text field.
    assert report["released_texts_per_mode"]["vocabulary"] == report["records"]
    assert report["released_texts_per_mode"]["tags"] == report["records"]
    assert report["released_texts_per_mode"]["shipped"] >= report["records"] // 2
    leaks = {m: {k: n for k, n in report["leaks_per_mode_and_kind"][m].items() if n}
             for m in MODES}
    assert leaks == {m: {} for m in MODES}, report["leak_examples"][:5]


def test_given_vocabulary_then_the_analysts_incident_words_survive(
        report: dict[str, Any]) -> None:
    assert report["vocabulary_analyst_words"] >= 1000
    assert report["vocabulary_analyst_words_kept"] >= 0.95


def test_given_tags_then_planted_tags_are_found_and_few_others(report: dict[str, Any]) -> None:
    assert report["tags_recall"] >= 0.95
    assert report["tags_precision"] >= 0.85


def test_given_each_planted_detail_as_written_then_the_leak_detector_finds_it() -> None:
    """The detector is not blind: fed the text as planted (zero-width, look-alike, split and all),
    it sees every planted detail of every kind, so a 0 above means 0 released."""
    from bench.canary_corpus import build
    from bench.free_text_leaks import _plain, leaked

    missed = [(p.kind, p.written) for rec in build(seed=5, per_feed=20) for p in rec.planted
              if not leaked(p, _plain(p.written))]
    assert missed == []
