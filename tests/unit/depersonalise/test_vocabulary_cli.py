"""``s115hub vocabulary``: an officer sees what a list would release from sample text."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import app
from services.protocols.vocabularies import sha256_of

runner = CliRunner()


def test_given_sample_text_when_shown_with_a_vocabulary_then_the_released_text_is_printed(
        ) -> None:
    r = runner.invoke(app, ["vocabulary", "show", "incident-en@1", "--text",
                            "Witness Grace Okafor saw two males force the rear door"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "Witness [NAME] saw two males force the rear door"


def test_given_a_sample_file_when_shown_with_a_tag_set_then_the_tags_are_printed(
        tmp_path: Path) -> None:
    sample = tmp_path / "sample.txt"
    sample.write_text("Forced the back door at night; a knife was shown.", encoding="utf-8")
    r = runner.invoke(app, ["vocabulary", "show", "mo-tags@1", "--file", str(sample)])
    assert r.exit_code == 0, r.output
    assert r.output.split() == ["entry-method:forced", "point-of-entry:rear-door",
                                "time-cue:night", "weapon:knife"]


def test_given_the_list_command_then_every_list_is_printed_with_its_hash() -> None:
    r = runner.invoke(app, ["vocabulary", "list"])
    assert r.exit_code == 0, r.output
    assert f"incident-en@1            sha256:{sha256_of('incident-en@1')}" in r.output
    assert "mo-tags@1" in r.output
    assert "towns-east@1" in r.output


def test_given_an_unknown_list_then_one_line_names_the_available_ones() -> None:
    r = runner.invoke(app, ["vocabulary", "show", "nope@1", "--text", "x"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [r.output.strip()]
    assert "no shipped list 'nope@1'" in r.output
