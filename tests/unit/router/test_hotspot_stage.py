"""The router's hot-spot stage: event-time precision, exactly-once counting by offset, state
snapshots that resume exactly, recount from deliveries, and alerts as the groups see them."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.feeds import FeedName
from schemas.shared import SharedRecord
from services.router import hotspot_runner
from services.router.hotspot_runner import decode_snapshot, encode_snapshot
from services.router.hotspot_stage import (
    HotspotStage,
    alert_recipients,
    event_time,
    recount,
    to_hotspot_alert,
)
from services.router.hotspots.detector import Alert, DetectorConfig
from services.router.subscriptions import Subscription
from tests.unit.router import herts_adjacency, herts_districts

NOW = datetime(2026, 6, 1, tzinfo=UTC)
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
ADJ = herts_adjacency()
DISTRICTS = herts_districts()
WARD = sorted(ADJ)[0]
QUIET = sorted(ADJ)[50]
WEEKLY = DetectorConfig(ewma_halflife_windows=4.0, warmup_windows=3)


def shared(i: int, ward: str | None, when: str | None, *, feed: FeedName = "police",
           category: str = "burglary", protocol: str = "police-district@1",
           **fields: Any) -> SharedRecord:
    time_field = {"police": "occurred_at", "council": "reported_at"}[feed]
    return SharedRecord(
        hub_record_id=f"r{i}", partner="p", feed=feed, category=category, ward_code=ward,
        district_code=DISTRICTS.get(ward or ""), fields={time_field: when, **fields},
        protocol=protocol, released_at=NOW)


def hour(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:00:00Z")


def stream(weeks: int = 6, spike_week: int = 5) -> list[SharedRecord]:
    """Two events a week in QUIET (its Tuesday) and a spike of 12 in WARD in ``spike_week``,
    then one event in the week after, to close it."""
    out: list[SharedRecord] = []
    n = itertools.count()
    for w in range(weeks):
        base = START + timedelta(weeks=w, days=1, hours=10)
        out += [shared(next(n), QUIET, hour(base)) for _ in range(2)]
        if w == spike_week:
            out += [shared(next(n), WARD, hour(base + timedelta(hours=h % 5))) for h in range(12)]
    out.append(shared(next(n), QUIET, hour(START + timedelta(weeks=weeks, days=1))))
    return out


def run(stage: HotspotStage, recs: list[SharedRecord], first_offset: int = 0) -> list[Alert]:
    alerts: list[Alert] = []
    for off, r in enumerate(recs, start=first_offset):
        alerts += stage.observe(r, 0, off, entitled=True, now=NOW).alerts
    return alerts


def new_stage() -> HotspotStage:
    return HotspotStage(WEEKLY, adjacency=ADJ, districts=DISTRICTS, kinds=("day", "week"))


class TestEventTime:
    @pytest.mark.parametrize(("value", "precision"), [
        ("2026-03-02T14:00:00Z", "hour"), ("2026-03-02T14:00:00+00:00", "hour"),
        ("2026-03-02", "week")])
    def test_given_a_released_time_then_its_precision_is_read(self, value: str,
                                                               precision: str) -> None:
        got = event_time(shared(0, WARD, value))
        assert got is not None
        assert got[1] == precision
        assert got[0].tzinfo is not None

    @pytest.mark.parametrize("value", ["2026-03", None, "soon"])
    def test_given_a_month_or_withheld_time_then_there_is_none(self, value: str | None) -> None:
        assert event_time(shared(0, WARD, value)) is None

    def test_given_a_police_uk_month_record_then_it_is_not_windowed(self) -> None:
        r = shared(0, WARD, "2018-01-01T00:00:00Z", time_precision="month")
        assert event_time(r) is None

    def test_given_a_council_record_then_reported_at_is_its_event_time(self) -> None:
        r = shared(0, WARD, "2026-03-02T01:00:00Z", feed="council",
                   occurred_at="2026-02-27T09:00:00Z")  # not the council's event-time field
        assert event_time(r) == (datetime(2026, 3, 2, 1, tzinfo=UTC), "hour")


class TestCounting:
    def test_given_a_replayed_offset_then_it_is_not_counted_twice(self) -> None:
        stage = new_stage()
        r = shared(0, WARD, hour(START))
        assert stage.observe(r, 0, 7, entitled=True, now=NOW).reason == "counted"
        assert stage.observe(r, 0, 7, entitled=True, now=NOW).reason == "replayed"
        assert stage.observe(r, 0, 3, entitled=True, now=NOW).reason == "replayed"
        other = shared(1, WARD, hour(START))
        assert stage.observe(other, 1, 3, entitled=True, now=NOW).reason == "counted"
        assert sum(stage.open_counts().values()) == 4  # two records x (day, week)

    def test_given_a_record_re_emitted_at_a_new_offset_then_it_is_counted_once(self) -> None:
        # What a depersonalise crash produces: the same hub record id again, later on the topic.
        stage = new_stage()
        r = shared(0, WARD, hour(START))
        assert stage.observe(r, 0, 7, entitled=True, now=NOW).reason == "counted"
        assert stage.observe(r, 2, 900, entitled=True, now=NOW).reason == "duplicate"
        restored = new_stage()
        restored.restore(json.loads(json.dumps(stage.to_state())))
        assert restored.observe(r, 1, 5, entitled=True, now=NOW).reason == "duplicate"
        assert sum(restored.open_counts().values()) == 2

    def test_the_memory_of_recent_ids_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("services.router.hotspot_stage.RECENT_IDS", 3)
        stage = new_stage()
        for i in range(5):
            stage.observe(shared(i, WARD, hour(START)), 0, i, entitled=True, now=NOW)
        assert list(stage.recent) == ["r2", "r3", "r4"]
        assert stage.observe(shared(0, WARD, hour(START)), 0, 9, entitled=True,
                             now=NOW).reason == "counted"

    def test_given_a_record_without_ward_then_its_time_still_closes_earlier_windows(
            self) -> None:
        recs = stream()
        closing = recs[-1].model_copy(update={"ward_code": None})
        stage = new_stage()
        alerts = run(stage, recs[:-1])
        result = stage.observe(closing, 0, len(recs), entitled=True, now=NOW)
        assert result.reason == "no_ward"
        assert [a.ward_code for a in alerts + result.alerts if a.window == "week"] == [WARD]

    @pytest.mark.parametrize(("rec", "entitled", "reason"), [
        (shared(0, WARD, "2026-01-05T10:00:00Z"), False, "not_entitled"),
        (shared(0, None, "2026-01-05T10:00:00Z"), True, "no_ward"),
        (shared(0, WARD, "2026-01"), True, "no_event_time"),
        (shared(0, WARD, "2026-06-03T10:00:00Z"), True, "future"),
    ])
    def test_given_a_record_that_cannot_be_counted_then_the_reason_says_why(
            self, rec: SharedRecord, entitled: bool, reason: str) -> None:
        stage = new_stage()
        assert stage.observe(rec, 0, 0, entitled=entitled, now=NOW).reason == reason
        assert stage.open_counts() == {}

    def test_given_a_date_only_time_then_only_the_week_window_counts_it(self) -> None:
        stage = new_stage()
        stage.observe(shared(0, WARD, "2026-01-05"), 0, 0, entitled=True, now=NOW)
        assert [k[0] for k in stage.open_counts()] == ["week"]

    def test_given_a_planted_spike_then_a_weekly_alert_names_the_ward_and_protocol(self) -> None:
        alerts = run(new_stage(), stream())
        weekly = [a for a in alerts if a.window == "week"]
        assert [a.ward_code for a in weekly] == [WARD]
        assert weekly[0].count == 12
        assert weekly[0].protocol == "police-district@1"
        assert weekly[0].category == "police-district|burglary"

    def test_given_the_open_windows_then_they_equal_a_recount_of_the_records(self) -> None:
        recs = stream(weeks=3, spike_week=2)[:-1]  # leave the spike week open
        stage = new_stage()
        run(stage, recs)
        dupes = [r.model_dump(mode="json") for r in recs[:5]]  # a record at two groups
        want = recount([r.model_dump(mode="json") for r in recs] + dupes)
        open_keys = {(k[0], k[1]) for k in stage.open_counts()}
        assert Counter({k: v for k, v in want.items() if (k[0], k[1]) in open_keys}) == Counter(
            stage.open_counts())


class TestSnapshot:
    @pytest.mark.parametrize("cut", [1, 13, 20, 25])
    def test_given_a_restart_from_a_snapshot_with_replay_then_alerts_match_one_run(
            self, cut: int) -> None:
        recs = stream()
        whole = new_stage()
        want = run(whole, recs)
        first = new_stage()
        got = run(first, recs[:cut])
        state = json.loads(json.dumps(first.to_state()))  # as it travels: JSON
        resumed = new_stage()
        resumed.restore(state)
        # The broker hands back a few records already counted (a crash before the commit).
        replay_from = max(0, cut - 3)
        got += run(resumed, recs[replay_from:], first_offset=replay_from)
        assert got == want
        assert resumed.open_counts() == whole.open_counts()
        assert resumed.to_state() == whole.to_state()

    def test_given_a_snapshot_larger_than_a_chunk_then_it_is_split_and_rebuilt(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(hotspot_runner, "CHUNK_BYTES", 64)
        stage = new_stage()
        run(stage, stream())
        msgs = encode_snapshot(stage.to_state(), slot=1)
        assert len(msgs) > 3
        assert msgs[-1][0] == b"head"
        assert decode_snapshot(dict(msgs)) == json.loads(json.dumps(stage.to_state()))

    def test_given_a_missing_or_corrupt_chunk_then_no_snapshot_is_used(self) -> None:
        msgs = dict(encode_snapshot({"version": 1, "x": list(range(100))}, slot=0))
        broken = {**msgs, b"chunk/0/0": b"garbage"}
        assert decode_snapshot(broken) is None
        assert decode_snapshot({b"head": msgs[b"head"]}) is None
        assert decode_snapshot({}) is None


class TestAlertsForGroups:
    def alert(self, count: int = 12) -> Alert:
        return Alert(ward_code=WARD, district_code=DISTRICTS[WARD],
                     category="police-district|burglary", window="week",
                     window_start=START, window_end=START + timedelta(weeks=1), count=count,
                     expected=0.5, p_value=1e-9, bh_threshold=1e-4, gi_z=2.5,
                     neighbours=(), protocol="police-district@1")

    def sub(self, group: str, **kw: Any) -> Subscription:
        base: dict[str, Any] = {"protocols": frozenset({"police-district"}),
                                "districts": frozenset({DISTRICTS[WARD]}),
                                "wards": frozenset(), "district_names": frozenset(),
                                "categories": frozenset({"*"})}
        return Subscription(group, **{**base, **kw})

    def test_given_groups_then_only_those_covering_subscribed_and_named_get_it(self) -> None:
        live = {"police-district@1": frozenset({"covers", "other-area", "no-cat", "fire-only"})}
        subs = [self.sub("covers"), self.sub("other-area", districts=frozenset({"E0"})),
                self.sub("no-cat", categories=frozenset({"robbery"})),
                self.sub("fire-only", protocols=frozenset({"fire-district"})),
                self.sub("not-named")]
        assert alert_recipients(self.alert(), subs, live) == ["covers"]

    def test_given_a_count_below_the_suppression_line_then_it_is_shown_as_less_than(
            self) -> None:
        msg = to_hotspot_alert(self.alert(count=7), "covers", suppress_below=10,
                               ward_names={WARD: "Somewhere"}, raised_at=NOW)
        assert msg.count == "<10"
        assert msg.category == "burglary"
        assert msg.ward_name == "Somewhere"
        exact = to_hotspot_alert(self.alert(count=12), "covers", suppress_below=10,
                                 ward_names={}, raised_at=NOW)
        assert exact.count == "12"

    def test_given_two_groups_then_alert_ids_differ_and_are_stable(self) -> None:
        a1 = to_hotspot_alert(self.alert(), "g1", suppress_below=5, ward_names={}, raised_at=NOW)
        a2 = to_hotspot_alert(self.alert(), "g2", suppress_below=5, ward_names={}, raised_at=NOW)
        again = to_hotspot_alert(self.alert(), "g1", suppress_below=5, ward_names={},
                                 raised_at=NOW + timedelta(hours=1))
        assert a1.alert_id != a2.alert_id
        assert a1.alert_id == again.alert_id
