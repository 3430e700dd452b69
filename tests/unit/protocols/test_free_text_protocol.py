"""Free-text release modes in protocol documents: refused at load time, bound into signatures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.core.config.errors import ConfigError
from services.protocols import vocabularies
from services.protocols.protocol import load_protocol
from services.protocols.signing import protocol_digest, verify_signatures

from . import BASE_YAML, HERTS_PROTOCOLS, Officers, make_protocol

SUMMARY_LINE = "      summary: {transform: free_text, mode: %s}\n"


def _with_summary(rule: str) -> str:
    return BASE_YAML + SUMMARY_LINE % rule


def test_given_scrub_when_loaded_then_refused_naming_file_line_vocabulary_and_tags(
        tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_with_summary("scrub"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_protocol(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), 22, "feeds.police.fields.summary.mode")
    assert "'vocabulary'" in str(err)
    assert "'tags'" in str(err)


def test_given_a_vocabulary_that_is_not_shipped_when_loaded_then_refused_naming_it(
        tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_with_summary("vocabulary, vocabulary: incident-en@9"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no shipped list 'incident-en@9'; available: "
                                          r"incident-en@1"):
        load_protocol(path)


@pytest.mark.parametrize("name", ["police-district.yaml", "fire-district.yaml"])
def test_given_the_hertfordshire_police_and_fire_protocols_then_text_is_released_as_tags(
        name: str) -> None:
    p = load_protocol(HERTS_PROTOCOLS / name)
    rules = [r for f in p.feeds.values() for r in f.fields.values() if r.transform == "free_text"]
    assert [r.params for r in rules] == [{"mode": "tags", "tagset": "mo-tags@1"}]
    assert set(p.list_hashes()) == {"mo-tags@1"}


def test_given_no_free_text_list_then_the_digest_is_what_it_always_was() -> None:
    p = make_protocol()
    assert p.list_hashes() == {}
    assert b"free_text_lists_sha256" not in protocol_digest(p)


def test_given_a_signed_protocol_when_its_vocabulary_file_changes_then_signatures_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "lists"
    shutil.copytree(vocabularies.DATA_DIR, data_dir,
                    ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(vocabularies, "DATA_DIR", data_dir)
    vocabularies.sha256_of.cache_clear()
    try:
        base = make_protocol()
        fields = {**base.model_dump()["feeds"]["police"]["fields"],
                  "summary": {"transform": "free_text", "mode": "vocabulary",
                              "vocabulary": "incident-en@1"}}
        protocol = make_protocol(feeds={"police": {"fields": fields}})
        officers = Officers(list(protocol.parties))
        signed = officers.sign(protocol)
        assert verify_signatures(signed, officers.registry) == []
        assert set(signed.list_hashes()) == {"incident-en@1", vocabularies.NAMES_REF}

        with (data_dir / "incident-en@1.txt").open("a", encoding="utf-8") as f:
            f.write("okafor\n")  # someone slips a surname into the allow-list
        vocabularies.sha256_of.cache_clear()
        problems = verify_signatures(signed, officers.registry)
        assert problems
        assert all("signature invalid" in p for p in problems)
    finally:
        vocabularies.sha256_of.cache_clear()
