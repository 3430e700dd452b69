from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.core.config.errors import ConfigError
from services.protocols.protocol import FieldRule, Protocol, load_protocol, parse_protocol

from . import BASE_YAML, HERTS_PROTOCOLS, protocol_data


def _load_error(tmp_path: Path, text: str) -> tuple[ConfigError, str]:
    path = tmp_path / "protocol.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_protocol(path)
    return info.value, str(path)


def _assert_names(err: ConfigError, path: str, line: int, field: str | None) -> None:
    assert (err.file, err.line, err.field) == (path, line, field)
    assert str(err).startswith(f"{path}:{line}: ")
    if field is not None:
        assert str(err).endswith(f"(field {field})")


def _edit(old: str, new: str) -> str:
    assert BASE_YAML.count(old) == 1, old
    return BASE_YAML.replace(old, new)


def test_given_the_base_document_when_loaded_then_it_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE_YAML, encoding="utf-8")
    protocol = load_protocol(path)
    assert protocol.ref == "test-police@1"
    assert protocol.signatures == []
    assert protocol.feeds["police"].fields["occurred_at"] == FieldRule(
        transform="time", params={"to": "hour"})


@pytest.mark.parametrize("name", ["police-district", "fire-district", "health-county",
                                  "council-district"])
def test_given_a_hertfordshire_protocol_when_loaded_then_it_is_valid_unsigned_and_as_agreed(
        name: str) -> None:
    protocol = load_protocol(HERTS_PROTOCOLS / f"{name}.yaml")
    assert protocol.ref == f"{name}@1"
    assert protocol.signatures == []
    assert (protocol.k, protocol.suppress_below, protocol.retention_days) == (3, 5, 365)
    assert str(protocol.valid_from) == "2026-01-01"
    assert str(protocol.valid_until) == "2027-12-31"
    assert str(protocol.review_by) == "2027-06-30"
    assert any("s115" in b for b in protocol.lawful_basis)
    assert "s17A" in protocol.purpose
    assert "hot-spot tasking" in protocol.purpose
    assert "grp-herts-county" in protocol.recipients


def test_given_the_hertfordshire_protocols_then_parties_are_the_agreed_ones() -> None:
    districts = ["grp-broxbourne", "grp-dacorum", "grp-hertsmere", "grp-north-herts",
                 "grp-three-rivers", "grp-watford", "grp-st-albans", "grp-welwyn-hatfield",
                 "grp-east-herts", "grp-stevenage"]
    police = load_protocol(HERTS_PROTOCOLS / "police-district.yaml")
    fire = load_protocol(HERTS_PROTOCOLS / "fire-district.yaml")
    health = load_protocol(HERTS_PROTOCOLS / "health-county.yaml")
    council = load_protocol(HERTS_PROTOCOLS / "council-district.yaml")
    assert police.disclosers == ["herts-police"]
    assert fire.disclosers == ["herts-fire"]
    for p in (police, fire, council):
        assert sorted(p.recipients) == sorted([*districts, "grp-herts-county"])
    assert health.disclosers == ["enherts-nhs"]
    assert health.recipients == ["grp-herts-county"]
    assert len(council.disclosers) == 10
    # Health is coarser: district, day, no free text.
    rules = health.feeds["health"].fields
    assert rules["location"].params == {"to": "district"}
    assert rules["assault_at"].params == {"to": "day"}
    assert "notes" not in health.released_fields("health")
    assert "location_description" not in health.released_fields("health")


def test_given_an_unknown_transform_when_loaded_then_error_names_file_line_and_field(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("category: keep", "category: kepp"))
    _assert_names(err, path, 18, "feeds.police.fields.category.transform")
    assert "unknown transform 'kepp'" in str(err)


def test_given_a_bad_transform_parameter_when_loaded_then_error_points_at_the_parameter(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("to: hour", "to: fortnight"))
    _assert_names(err, path, 21, "feeds.police.fields.occurred_at.to")
    assert "fortnight" in str(err)


def test_given_a_misspelt_parameter_when_loaded_then_it_is_refused_not_ignored(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("        to: hour\n",
                                            "        to: hour\n        tz: utc\n"))
    _assert_names(err, path, 22, "feeds.police.fields.occurred_at.tz")


def test_given_a_field_the_feed_does_not_have_when_loaded_then_error_names_it(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("category: keep", "colour: keep"))
    _assert_names(err, path, 18, "feeds.police.fields.colour")
    assert "no field 'colour'" in str(err)


def test_given_a_personal_field_kept_when_loaded_then_it_is_refused(tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("      category: keep\n",
                                            "      category: keep\n      victim_name: keep\n"))
    _assert_names(err, path, 19, "feeds.police.fields.victim_name")
    assert "personal" in str(err)


def test_given_a_date_of_birth_bucketed_as_an_event_time_when_loaded_then_it_is_refused(
        tmp_path: Path) -> None:
    text = _edit("      category: keep\n",
                 "      category: keep\n      victim_dob: {transform: time, to: day}\n")
    err, path = _load_error(tmp_path, text)
    _assert_names(err, path, 19, "feeds.police.fields.victim_dob")


def test_given_an_unknown_feed_when_loaded_then_error_names_the_feed(tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("  police:", "  ambulance:"))
    _assert_names(err, path, 16, "feeds.ambulance")


def test_given_broken_yaml_when_loaded_then_error_names_file_and_line(tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("title: Test protocol", "title: Test: protocol"))
    assert (err.file, err.line) == (path, 3)
    assert str(err).startswith(f"{path}:3: not valid YAML")


def test_given_a_quasi_identifier_that_is_not_released_when_loaded_then_it_is_refused(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("[occurred_at]", "[occurred_at, address]"))
    _assert_names(err, path, 14, "quasi_identifiers.1")


def test_given_valid_until_before_valid_from_when_loaded_then_error_names_valid_until(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("valid_until: 2027-12-31", "valid_until: 2025-12-31"))
    _assert_names(err, path, 12, "valid_until")


def test_given_k_below_two_when_loaded_then_error_names_k(tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("k: 3", "k: 1"))
    _assert_names(err, path, 8, "k")


def test_given_a_field_named_twice_when_loaded_then_the_second_is_reported(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("      category: keep\n",
                                            "      category: keep\n      category: drop\n"))
    _assert_names(err, path, 19, "feeds.police.fields.category")


def test_given_pseudonymise_with_an_unknown_field_when_loaded_then_error_points_at_it(
        tmp_path: Path) -> None:
    text = _edit("      category: keep\n",
                 "      category: keep\n      victim_name:\n        transform: pseudonymise\n"
                 "        with: [victim_dob, shoe_size]\n")
    err, path = _load_error(tmp_path, text)
    _assert_names(err, path, 21, "feeds.police.fields.victim_name.with.1")


def test_given_a_rule_mapping_without_transform_when_loaded_then_error_names_the_field(
        tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, _edit("        transform: time\n", ""))
    _assert_names(err, path, 19, "feeds.police.fields.occurred_at")


def test_given_an_unknown_top_level_key_when_loaded_then_it_is_refused(tmp_path: Path) -> None:
    err, path = _load_error(tmp_path, BASE_YAML + "notes: x\n")
    _assert_names(err, path, 22, "notes")


def test_given_a_missing_file_when_loaded_then_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_protocol(tmp_path / "missing.yaml")


def test_given_a_bare_name_or_a_mapping_then_the_rule_and_its_dump_are_the_same() -> None:
    bare = parse_protocol(_edit("category: keep", "category: {transform: keep}"))
    mapped = parse_protocol(BASE_YAML)
    assert bare == mapped
    assert mapped.model_dump(mode="json")["feeds"]["police"]["fields"]["occurred_at"] == {
        "transform": "time", "to": "hour"}


def test_given_a_dumped_protocol_when_parsed_again_then_it_is_equal() -> None:
    protocol = load_protocol(HERTS_PROTOCOLS / "police-district.yaml")
    again = parse_protocol(yaml.safe_dump(protocol.model_dump(mode="json")))
    assert again == protocol


def test_given_unnamed_fields_then_they_are_not_released() -> None:
    protocol = parse_protocol(BASE_YAML)
    assert protocol.released_fields("police") == {"category", "occurred_at"}
    assert protocol.released_fields("fire") == frozenset()


def test_given_a_protocol_built_in_code_then_the_same_checks_apply() -> None:
    data = protocol_data()
    data["feeds"]["police"]["fields"]["address"] = "keep"
    with pytest.raises(ConfigError, match=r"personal.*\(field feeds\.police\.fields\.address\)"):
        Protocol.model_validate(data)


def test_given_a_repeated_recipient_then_it_is_refused() -> None:
    with pytest.raises(ConfigError, match="recipients"):
        parse_protocol(_edit("[grp-watford]", "[grp-watford, grp-watford]"))


def test_given_a_signature_from_a_non_party_in_the_file_then_it_is_refused() -> None:
    text = BASE_YAML + ("signatures:\n  - {party: grp-dacorum, officer: X, key_id: "
                        "0123456789abcdef, signature: AAAA}\n")
    with pytest.raises(ConfigError) as info:
        parse_protocol(text, "p.yaml")
    assert (info.value.line, info.value.field) == (23, "signatures.0.party")
