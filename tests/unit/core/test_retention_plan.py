"""The retention plan from protocols' retention_days (issue 16): pure."""

from __future__ import annotations

from datetime import date

from services.core.kafka.topics import Topics
from services.core.ops.retention import DAY_MS, ProtocolRetention, data_key_cutoff, plan

T = Topics("s115")
POLICE = ProtocolRetention("police@1", 365, ("police",), ("grp-a", "grp-county"))
HEALTH = ProtocolRetention("health@1", 90, ("health",), ("grp-county",))


def rows() -> dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]]:
    return {r.topic: (r.days, r.protocols, r.shorter) for r in plan(
        [POLICE, HEALTH], T, feeds=["police", "fire", "health"], groups=["grp-a", "grp-county",
                                                                         "grp-none"],
        partner_feeds={"herts-police": ["police"], "nhs": ["health"]})}


def test_each_topic_keeps_its_protocols_data_for_their_longest_retention() -> None:
    r = rows()
    assert r["s115.raw.police"] == (365, ("police@1",), ())
    assert r["s115.raw.health"] == (90, ("health@1",), ())
    assert r["s115.inbound.nhs"] == (90, ("health@1",), ())
    assert r["s115.deliver.grp-a"] == (365, ("police@1",), ())
    assert r["s115.shared"] == (365, ("health@1", "police@1"), ("health@1",))


def test_a_topic_holding_a_shorter_protocol_names_it() -> None:
    assert rows()["s115.deliver.grp-county"][2] == ("health@1",)


def test_topics_holding_no_protocols_data_are_left_alone() -> None:
    r = rows()
    assert "s115.raw.fire" not in r
    assert "s115.deliver.grp-none" not in r
    assert "s115.audit" not in r


def test_retention_in_ms_and_when_it_differs() -> None:
    row = next(x for x in plan([POLICE], T, feeds=["police"], groups=[], partner_feeds={}))
    assert row.ms == 365 * DAY_MS
    assert row.change_needed  # unknown current setting
    from dataclasses import replace
    assert not replace(row, current_ms=365 * DAY_MS).change_needed


def test_data_keys_past_every_protocols_retention_may_go() -> None:
    assert data_key_cutoff([POLICE, HEALTH], date(2026, 11, 29)) == date(2025, 11, 29)
    assert data_key_cutoff([], date(2026, 11, 29)) is None
