from __future__ import annotations

import json

import pytest

from services.core.config.county import County
from services.core.errors import RecordRejected
from services.ingest.dlq import REPLAYED, collect, read_corrections
from services.ingest.inbound import feed_of, item_of

COUNTY = County.model_validate({"county": "X", "groups": [], "partners": [
    {"id": "pol", "name": "P", "kind": "police", "feeds": ["police"], "officer": "o"},
    {"id": "multi", "name": "M", "kind": "council", "feeds": ["council", "fire"], "officer": "o"},
]})


def test_feed_of_single_feed_partner_needs_no_header() -> None:
    assert feed_of(COUNTY, "pol", None) == ("police", None)


def test_feed_of_refuses_ungranted_unknown_and_missing_feeds() -> None:
    assert feed_of(COUNTY, "pol", b"fire")[1] == "partner 'pol' may not publish to feed 'fire'"
    feed, why = feed_of(COUNTY, "pol", b"Zebedee Quixote")
    assert feed == "unknown"
    assert why is not None
    assert "Zebedee" not in why
    assert "name one in the 'feed' header" in str(feed_of(COUNTY, "multi", None)[1])
    assert "not in the county configuration" in str(feed_of(COUNTY, "gone", None)[1])
    assert feed_of(None, "pol", None)[0] == "unknown"


def test_item_of_names_the_offset_and_the_reason() -> None:
    assert item_of(5, b'{"a":1}', None).data == {"a": 1}
    assert item_of(5, b"\xff", None).error == (
        "the message is not UTF-8: invalid start byte at byte 0")
    assert item_of(5, None, None).error == "the message has no value"
    bad = item_of(6, b"{", None)
    assert bad.position == 6
    assert bad.error is not None
    assert bad.error.startswith("not valid JSON")


def test_collect_pairs_dead_letters_with_their_replay_markers() -> None:
    a = {"rejection_id": "xa", "partner": "pol", "feed": "police", "line": 3, "problems": [],
         "rejected_at": "2026-11-29T10:00:00+00:00"}
    b = {"rejection_id": "xb", "partner": "pol", "feed": "police", "index": 0, "problems": [],
         "rejected_at": "2026-11-29T10:00:00+00:00"}
    marker = {"replay_of": "xa", "hub_record_id": "r1"}
    letters = collect([(b"xa", json.dumps(a).encode(), []), (None, b"not json", []),
                       (b"xb", json.dumps(b).encode(), []),
                       (b"xa", json.dumps(marker).encode(), [("kind", REPLAYED)])])
    assert [(x.rejection_id, x.summary()["replayed"]) for x in letters] == [
        ("xa", ["r1"]), ("xb", [])]
    assert letters[0].summary()["line"] == 3


def test_read_corrections_names_the_bad_line() -> None:
    text = '{"rejection_id": "xa", "record": {"a": 1}}\n\n{"record": 1}\n'
    with pytest.raises(RecordRejected, match="line 3"):
        read_corrections(text)
    assert read_corrections(text.split("\n")[0]) == {"xa": {"a": 1}}
