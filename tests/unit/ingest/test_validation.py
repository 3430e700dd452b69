"""Parsers and validation: every rejection names the record, the field and the reason."""

from __future__ import annotations

import json

import pytest

from services.core.errors import RecordRejected
from services.ingest.validation import load_json, parse_csv, parse_ndjson, pointer, validate_record

POLICE = {"source_id": "P1", "category": "burglary", "occurred_at": "2024-05-01T21:30:00Z"}


def test_given_nested_location_error_then_pointer_is_rfc6901() -> None:
    with pytest.raises(RecordRejected) as exc:
        validate_record("fire", {"source_id": "F1", "category": "deliberate-primary-fire",
                                 "property_type": "dwelling", "occurred_at": "2024-05-01T00:00Z",
                                 "location": {"lat": 10, "lon": -0.3}})
    assert [p for p, _ in exc.value.problems] == ["/location/lat"]
    assert "greater than or equal to 49" in exc.value.problems[0][1]


def test_given_key_with_slash_and_tilde_then_pointer_escapes_them() -> None:
    assert pointer(("a/b", "c~d", 0)) == "/a~1b/c~0d/0"


@pytest.mark.parametrize(("feed", "record", "pointers"), [
    ("police", {**POLICE, "category": "murder"}, ["/category"]),
    ("police", {k: v for k, v in POLICE.items() if k != "occurred_at"}, ["/occurred_at"]),
    ("fire", {"source_id": "F", "category": "deliberate-primary-fire", "property_type": "castle",
              "occurred_at": "2024-05-01T00:00:00Z", "location": {"lat": 51.7, "lon": -0.3}},
     ["/property_type"]),
    ("health", {"source_id": "H", "arrival_at": "2024-05-01T00:00:00Z",
                "assault_at": "2024-05-01T00:00:00Z", "assault_method": "knife-or-sharp",
                "location_type": "home", "nhs_number": "12"}, ["/nhs_number"]),
    ("council", {"source_id": "C", "report_type": "asb", "category": "noise",
                 "reported_at": "yesterday", "location": {"lat": 51.7, "lon": -0.3}},
     ["/reported_at"]),
])
def test_given_a_bad_field_in_each_feed_then_its_pointer_is_named(
        feed: str, record: dict[str, object], pointers: list[str]) -> None:
    with pytest.raises(RecordRejected) as exc:
        validate_record(feed, record)
    assert [p for p, _ in exc.value.problems] == pointers
    assert all(reason for _, reason in exc.value.problems)


def test_given_several_bad_fields_then_every_one_is_listed() -> None:
    with pytest.raises(RecordRejected) as exc:
        validate_record("police", {"source_id": "", "category": "x", "colour": "red"})
    assert sorted(p for p, _ in exc.value.problems) == [
        "/category", "/colour", "/occurred_at", "/source_id"]


def test_given_not_an_object_then_rejected_with_its_type() -> None:
    with pytest.raises(RecordRejected, match="JSON object, not list"):
        validate_record("police", [1])


def test_given_ndjson_with_blank_and_bad_lines_then_indexes_count_records_only() -> None:
    text = json.dumps(POLICE) + "\n\n{oops\r\n" + json.dumps(POLICE) + "\n"
    items = list(parse_ndjson(text))
    assert [i.position for i in items] == [0, 1, 2]
    assert items[1].error is not None
    assert items[1].error.startswith("not valid JSON")
    assert items[0].data == POLICE
    assert items[2].error is None


def test_given_a_json_string_holding_u2028_then_ndjson_keeps_it_one_record() -> None:
    text = json.dumps({**POLICE, "summary": "a\u2028b"}, ensure_ascii=False)
    items = list(parse_ndjson(text))
    assert len(items) == 1
    assert items[0].data["summary"] == "a\u2028b"


@pytest.mark.parametrize(("text", "reason"), [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": "\\ud800"}', "unpaired UTF-16 surrogate"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{", "not valid JSON"),
    ('{"a": 1e999999}', "out of range for a JSON number"),
    ("-1e400", "out of range for a JSON number"),
])
def test_given_json_that_cannot_be_sealed_then_load_json_refuses_it(text: str, reason: str) -> None:
    value, error = load_json(text)
    assert value is None
    assert error is not None
    assert reason in error


def test_given_csv_then_positions_are_line_numbers_with_header_line_1() -> None:
    text = ("source_id,category,occurred_at,lat,lon\n"
            "A,burglary,2024-05-01T00:00:00Z,51.7,-0.3\n"
            "B,burglary,2024-05-01T00:00:00Z,51.7,-0.3,extra\n"
            "C,arson,2024-05-01T00:00:00Z,,\n")
    items = list(parse_csv(text))
    assert [i.position for i in items] == [2, 3, 4]
    assert items[0].data == {"source_id": "A", "category": "burglary",
                             "occurred_at": "2024-05-01T00:00:00Z",
                             "location": {"lat": "51.7", "lon": "-0.3"}}
    assert items[1].error == "line 3 has more cells than the header"
    assert items[2].data == {"source_id": "C", "category": "arson",
                             "occurred_at": "2024-05-01T00:00:00Z"}
    validate_record("police", items[0].data)  # strings convert where the schema says so


def test_given_csv_with_bom_then_first_column_is_not_mangled() -> None:
    items = list(parse_csv("\ufeffsource_id,category\nA,burglary\n"))
    assert items[0].data == {"source_id": "A", "category": "burglary"}


def test_given_csv_syntax_error_then_the_line_is_named_and_reading_stops() -> None:
    big = "x" * 200_000  # over the csv module's field limit
    items = list(parse_csv(f"source_id,category\nA,burglary\n{big},y\nB,burglary\n"))
    assert items[0].position == 2
    assert items[0].error is None
    assert items[-1].error is not None
    assert "CSV syntax error on line" in items[-1].error
