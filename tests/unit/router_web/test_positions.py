from __future__ import annotations

import pytest

from services.router.web.positions import BadEventId, decode, encode


def test_event_ids_round_trip() -> None:
    pos = {("d", 0): 12, ("d", 2): 0, ("h", 0): 3, ("d", 1): 5}
    text = encode(pos)
    assert text == "d0-12.d1-5.d2-0.h0-3"
    assert decode(text) == pos


def test_empty_id_means_no_positions() -> None:
    assert decode("") == {}
    assert decode("  ") == {}


@pytest.mark.parametrize("bad", ["x0-1", "d0", "d-1-2", "d0-1;h0-2", "d0-1..h0-2", "d0--1",
                                 "d" + "1" * 3000])
def test_ids_the_hub_did_not_issue_are_refused_with_the_offending_part(bad: str) -> None:
    with pytest.raises(BadEventId, match="Last-Event-ID"):
        decode(bad)
