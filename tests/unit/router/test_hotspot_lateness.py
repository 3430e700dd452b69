"""Allowed lateness from the protocol and watermarks per partner feed (issue 17). Pure logic:
a handful of records each, no baselines, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from services.core.config.errors import ConfigError
from services.protocols.signing import protocol_digest
from services.router.hotspot_stage import lateness_by_protocol
from services.router.hotspots.engine import CountEngine, EngineConfig, Event
from tests.unit.protocols import make_protocol

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
DAY_ONLY = EngineConfig(kinds=("day",))
HOUR_ONLY = EngineConfig(kinds=("hour",))


def _windows(engine: CountEngine) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The snapshot's windows: (kind, category, index) -> counts and whether tested."""
    return {(k, c, i): {"counts": dict(counts), "tested": tested, "changed": changed}
            for k, c, i, counts, _p, tested, _a, changed in engine.to_state()["windows"]}


# -- allowed lateness: a protocol setting ---------------------------------------------------------

def test_allowed_lateness_is_an_optional_protocol_setting_of_at_most_a_week() -> None:
    assert make_protocol().allowed_lateness_hours is None
    assert make_protocol(allowed_lateness_hours=72).allowed_lateness_hours == 72
    for bad in (0, -1, 169):
        with pytest.raises(ValidationError, match="allowed_lateness_hours"):
            make_protocol(allowed_lateness_hours=bad)
    # Unset, it is not in the signed bytes: protocols signed before it keep their signatures.
    assert b"allowed_lateness_hours" not in protocol_digest(make_protocol())
    assert protocol_digest(make_protocol()) != protocol_digest(
        make_protocol(allowed_lateness_hours=72))


def test_lateness_by_protocol_takes_the_set_ones_and_the_longer_of_two_versions() -> None:
    protocols = [SimpleNamespace(id="fire-incidents", allowed_lateness_hours=72),
                 SimpleNamespace(id="fire-incidents", allowed_lateness_hours=96),
                 SimpleNamespace(id="police-district", allowed_lateness_hours=None),
                 SimpleNamespace(id="health-ed", allowed_lateness_hours=12)]
    assert lateness_by_protocol(protocols) == {"fire-incidents": timedelta(hours=96),
                                               "health-ed": timedelta(hours=12)}


def test_given_a_lateness_beyond_a_week_then_the_engine_refuses_it_naming_the_protocol() -> None:
    with pytest.raises(ConfigError, match=r"lateness\.fire"):
        EngineConfig(lateness={"fire": timedelta(days=8)})
    engine = CountEngine(DAY_ONLY)
    with pytest.raises(ConfigError, match="fire"):
        engine.set_lateness({"fire": timedelta(days=8)})
    assert EngineConfig().lateness_of("police|asb") == 48 * 3600  # the default


@pytest.mark.parametrize(("lateness", "in_window"), [(None, False), (timedelta(hours=72), True)])
def test_given_a_protocol_lateness_of_72h_then_a_record_60h_late_still_counts_in_its_day(
        lateness: timedelta | None, in_window: bool) -> None:
    engine = CountEngine(DAY_ONLY)
    if lateness is not None:
        engine.set_lateness({"fire": lateness})
    ward, cat = "W1", "fire|deliberate_fire"
    engine.add([Event(ward, cat, "fire", MONDAY + timedelta(hours=10))],
               MONDAY + timedelta(hours=11))
    # Monday's window ends Tuesday 00:00; the feed's clock reaches Thursday noon (60 h on).
    thursday = MONDAY + timedelta(days=3, hours=12)
    engine.add([Event(ward, cat, "fire", thursday)], thursday)
    engine.add([Event(ward, cat, "fire", MONDAY + timedelta(hours=14))], thursday)
    monday = _windows(engine).get(("day", cat, 20514))
    if in_window:  # still open: the late record is in Monday's count
        assert monday is not None
        assert monday["counts"] == {ward: 2}
        assert engine.late_counted_total() == 0
    else:  # the default 48 h had passed: retired, the record reported as late, not dropped
        assert monday is None
        assert engine.late_counted_total() == 1
    assert engine.dropped() == 0


# -- watermark per partner feed -------------------------------------------------------------------

def _two_police_forces(partnered: bool) -> tuple[CountEngine, str, int]:
    """Force A's clock runs an hour ahead and it sends live; force B uploads every few hours.
    Both send police|asb. Returns the engine after B's upload, the category and the index of
    the hour window 10:00-11:00 that B's upload fills."""
    engine = CountEngine(HOUR_ONLY)
    cat = "police|asb"
    a, b = ("force-a", "force-b") if partnered else (None, None)
    for minute in range(0, 14 * 60 + 1, 20):  # A: live from 00:00 to 14:00, an hour ahead
        now = MONDAY + timedelta(minutes=minute)
        engine.add([Event("WA", cat, "police", now + timedelta(hours=1), partner=a)], now)
        if minute == 10 * 60:  # B's upload of 07:00-09:59 arrives at 10:00
            engine.add([Event("WB", cat, "police", now - timedelta(minutes=15), partner=b)],
                       now)
    upload = MONDAY + timedelta(hours=14)
    engine.add([Event("WB", cat, "police", MONDAY + timedelta(hours=10, minutes=m), partner=b)
                for m in (5, 25, 45)], upload)
    return engine, cat, 20514 * 24 + 10


def test_given_one_partners_clock_an_hour_ahead_then_another_partners_hour_waits_for_it() -> None:
    engine, cat, hour = _two_police_forces(partnered=True)
    window = _windows(engine)[("hour", cat, hour)]
    # Not tested before force B's records for 10:00-11:00 arrived: they are in the count, and
    # the window waits for B's watermark (B's clock, not A's, says 10:00 is complete).
    assert window["counts"]["WB"] == 3
    assert not window["changed"]
    assert engine.late_counted_total() == 0
    assert engine.dropped() == 0
    status = {f["partner"]: f for f in engine.feed_status(MONDAY + timedelta(hours=14))}
    assert set(status) == {"force-a", "force-b"}
    assert all(f["feed"] == "police" for f in status.values())


def test_given_one_watermark_per_feed_type_then_the_fast_clock_closed_the_hour_early() -> None:
    # The same records with no partner named (one watermark for the police feed, as before):
    # force A's fast clock had the hour tested before B's records came, so they only changed it
    # afterwards. This is what the per-partner watermark prevents.
    engine, cat, hour = _two_police_forces(partnered=False)
    window = _windows(engine)[("hour", cat, hour)]
    assert window["tested"]
    assert window["changed"] == ["WB"]
