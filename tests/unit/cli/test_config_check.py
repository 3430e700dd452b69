"""`config check` finds what would silently route nothing or release nothing before a county
directory is published: unknown ward and district codes, a county_wide county that matches no
boundary county, protocol parties the county does not have, officers who do not match."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from services.cli.config_check import check_county_dir, diff_lines
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from services.core.config.state import encode

HALTON = REPO_ROOT / "deploy" / "halton"
TODAY = date(2026, 11, 29)


@pytest.fixture(scope="module")
def areas() -> AreaIndex:
    return AreaIndex.load(REPO_ROOT / "deploy" / "data" / "boundaries")


@pytest.fixture
def halton(tmp_path: Path) -> Path:
    shutil.copytree(HALTON, tmp_path / "halton")
    return tmp_path / "halton"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_given_the_halton_example_then_there_are_no_errors(areas: AreaIndex) -> None:
    report = check_county_dir(HALTON, areas, TODAY)
    assert report.errors == []
    assert any("county_wide covers 1 district(s): E06000006" in n for n in report.notes)


def test_given_a_ward_code_that_does_not_exist_then_it_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    edit(halton / "county.yaml", "E05001588, E05001596", "E05001577X, E05001596")
    [error] = check_county_dir(halton, areas, TODAY).errors
    assert "ward 'E05001577X' is not in the boundaries" in error


def test_given_a_district_code_that_does_not_exist_then_it_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    edit(halton / "county.yaml", "wards: [E05001588, E05001596]", "districts: [E06999999]")
    [error] = check_county_dir(halton, areas, TODAY).errors
    assert "district 'E06999999' is not in the boundaries" in error


@pytest.mark.parametrize("name", ["Halton", "Halton (unitary)", "halton", "E06000006"])
def test_given_the_county_by_name_note_or_code_then_county_wide_finds_halton(
        name: str, halton: Path, areas: AreaIndex) -> None:
    edit(halton / "county.yaml", "county: Halton\n", f"county: {name}\n")
    report = check_county_dir(halton, areas, TODAY)
    assert report.errors == []
    assert any("E06000006" in n for n in report.notes)


def test_given_a_county_matching_no_boundary_county_then_county_wide_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    edit(halton / "county.yaml", "county: Halton\n", "county: Cheshire\n")
    [error] = check_county_dir(halton, areas, TODAY).errors
    assert "county 'Cheshire' matches no district" in error
    assert "Halton (unitary)" in error


def test_given_a_protocol_party_that_is_no_partner_or_group_then_it_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    edit(halton / "protocols" / "halton-asb.yaml", "[grp-halton, grp-runcorn-old-town]",
         "[grp-halton, grp-widnes]")
    errors = check_county_dir(halton, areas, TODAY).errors
    assert any("recipient 'grp-widnes' is not a group" in e for e in errors), errors


def test_given_a_signature_naming_another_officer_then_it_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    from services.cli.protocol_text import with_signatures
    from services.protocols.protocol import load_protocol
    from services.protocols.signing import generate_officer_key, sign_protocol

    path = halton / "protocols" / "halton-asb.yaml"
    private_pem, _, _ = generate_officer_key()
    signed = sign_protocol(load_protocol(path), private_pem, "halton-bc", "Someone Else")
    path.write_text(with_signatures(path.read_text(), signed))
    errors = check_county_dir(halton, areas, TODAY).errors
    assert any("names officer 'Someone Else'" in e for e in errors), errors


def test_given_a_group_naming_a_missing_protocol_then_it_is_refused(
        halton: Path, areas: AreaIndex) -> None:
    edit(halton / "county.yaml", "protocols: [halton-asb]\n    officer: Chair, Safer Halton "
         "Partnership\n  - id: grp-runcorn", "protocols: [halton-asb, halton-fire]\n    officer: "
         "Chair, Safer Halton Partnership\n  - id: grp-runcorn")
    errors = check_county_dir(halton, areas, TODAY).errors
    assert any("protocol 'halton-fire' is not in" in e for e in errors), errors


def test_given_a_protocol_past_its_review_date_then_it_is_a_warning(
        areas: AreaIndex) -> None:
    report = check_county_dir(HALTON, areas, date(2027, 7, 1))
    assert any("review was due on 2027-06-30" in w for w in report.warnings)


def test_given_live_config_then_the_diff_says_new_changed_unchanged_and_stale() -> None:
    wanted: list[tuple[str, dict[str, Any] | None]] = [
        ("county", {"county": "Halton"}), ("protocol/a@1", {"yaml": "x"}),
              ("protocol/b@1", {"yaml": "y"})]
    live = {"county": encode({"county": "Halton"}), "protocol/a@1": encode({"yaml": "old"}),
            "protocol/z@1": encode({"yaml": "z"})}
    lines = diff_lines(wanted, live)
    assert "  + protocol/b@1  (new)" in lines
    assert "  ~ protocol/a@1  (changed)" in lines
    assert any(line.startswith("  = protocol/z@1") for line in lines)
    assert lines[-1] == "  1 unchanged"
