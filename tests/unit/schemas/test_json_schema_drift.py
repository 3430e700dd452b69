"""The checked-in JSON Schema files are what the pydantic models generate today."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.base import personal_fields
from schemas.export import JSON_DIR, contracts, drift, generated
from schemas.feeds import FEEDS


def test_checked_in_schemas_match_the_models() -> None:
    assert drift() == [], "run `python -m schemas.export` and commit schemas/json/"


def test_drift_is_detected_when_a_file_is_edited(tmp_path: Path) -> None:
    for name, text in generated().items():
        (tmp_path / name).write_text(text)
    assert drift(tmp_path) == []
    victim = sorted(generated())[0]
    (tmp_path / victim).write_text((tmp_path / victim).read_text().replace('"type"', '"typ"', 1))
    (tmp_path / "orphan.schema.json").write_text("{}")
    assert drift(tmp_path) == sorted([victim, "orphan.schema.json"])


def test_personal_fields_are_marked_in_the_exported_schema() -> None:
    for feed, model in FEEDS.items():
        schema = json.loads((JSON_DIR / f"feed.{feed}.schema.json").read_text())
        marked = {name for name, prop in schema["properties"].items() if prop.get("x-personal")}
        assert marked == set(personal_fields(model)), feed
        assert marked, f"{feed} has no personal fields marked"


def test_every_contract_has_a_file() -> None:
    assert {f"{stem}.schema.json" for stem in contracts()} == {
        p.name for p in JSON_DIR.glob("*.schema.json")}
