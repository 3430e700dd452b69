"""The example county configs load, point at real areas, and a broken file is reported with its
file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.areas import AreaIndex
from services.core.config.county import County, load_county
from services.core.config.errors import ConfigError
from services.core.config.settings import REPO_ROOT
from services.core.config.yamlconf import parse_text

HERTS = REPO_ROOT / "deploy" / "hertfordshire" / "county.yaml"
BOUNDARIES = REPO_ROOT / "deploy" / "data" / "boundaries"


def test_hertfordshire_has_the_partners_and_groups_issue_2_names() -> None:
    county = load_county(HERTS)
    kinds = sorted(p.kind for p in county.partners)
    assert kinds.count("police") == 1
    assert kinds.count("fire") == 1
    assert kinds.count("health") == 1
    assert kinds.count("council") == 10
    areas = AreaIndex.load(BOUNDARIES)
    herts = {code for code, c in areas.district_county.items() if c == "Hertfordshire"}
    assert len(herts) == 10
    district_groups = [g for g in county.groups if len(g.districts) == 1]
    assert sorted(g.districts[0] for g in district_groups) == sorted(herts)
    county_groups = [g for g in county.groups if set(g.districts) == herts]
    assert len(county_groups) == 1


def test_every_area_code_in_the_examples_is_a_real_boundary() -> None:
    areas = AreaIndex.load(BOUNDARIES)
    for path in sorted((REPO_ROOT / "deploy").glob("*/county.yaml")):
        county = load_county(path)
        for g in county.groups:
            assert set(g.districts) <= set(areas.district_names), (path, g.id)
            assert set(g.wards) <= set(areas.wards), (path, g.id)


GOOD = HERTS.read_text(encoding="utf-8")


@pytest.mark.parametrize(("edit", "field", "reason"), [
    (("kind: fire", "kind: ambulance"), "partners.1.kind", "Input should be"),
    (("feeds: [fire]", "feeds: []"), "partners.1.feeds", "at least 1"),
    (("  - id: herts-fire", "  - id: Herts Fire"), "partners.1.id", "pattern"),
    (("    officer: Designated Officer, Hertfordshire Fire and Rescue\n",
      "    officer: Designated Officer, Hertfordshire Fire and Rescue\n    colour: red\n"),
     "partners.1.colour", "Extra inputs"),
])
def test_a_bad_field_is_reported_with_file_line_and_field(
        edit: tuple[str, str], field: str, reason: str) -> None:
    old, new = edit
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(ConfigError) as err:
        parse_text(County, text, "county.yaml")
    e = err.value
    assert e.file == "county.yaml"
    assert e.field == field
    assert reason in str(e)
    bad_line = text.splitlines()[e.line - 1] if e.line else ""
    assert field.rsplit(".", 1)[1] in bad_line or new.strip().split(":")[0] in bad_line, (
        e.line, bad_line)


def test_duplicate_ids_are_refused() -> None:
    text = GOOD.replace("id: dacorum-bc", "id: broxbourne-bc", 1)
    with pytest.raises(ConfigError, match="unique"):
        parse_text(County, text, "county.yaml")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    lines = GOOD.splitlines()
    lines[10] = lines[10] + ": [unclosed"
    with pytest.raises(ConfigError) as err:
        parse_text(County, "\n".join(lines), "broken.yaml")
    assert err.value.file == "broken.yaml"
    assert err.value.line in (11, 12)
