"""The group API serves a group's alerts from the router's own state (``GroupWeb.alerts``):
caught up from the group's hot-spot topic on each call, latest version of each alert id, and
never another group's alerts. On a real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from schemas.alert import HotspotAlert
from services.core.config.settings import Settings
from services.core.kafka.clients import ensure_topics, kafka_python_common
from services.core.kafka.topics import topic_specs, topics_for
from services.core.ops.metrics import ServiceMetrics
from services.router.web.group_web import GroupWeb
from tests.conftest import BrokerInfo
from tests.unit.router_web.test_small_count_floor import NoFacts, Source

START = datetime(2026, 3, 2, tzinfo=UTC)
ALERT = HotspotAlert(
    alert_id="al-1", group="grp-a", ward_code="E05004838", category="burglary", window="week",
    window_start=START, window_end=START + timedelta(days=7), count="14", expected=3.2,
    p_value=1.2e-5, bh_threshold=4e-4, gi_z=3.1, neighbours=[], protocol="police-district@1",
    raised_at=START + timedelta(days=7, minutes=1))


@pytest.mark.kafka
def test_given_alerts_published_between_calls_then_each_call_has_the_latest_of_each(
        tmp_path: Path, kafka_broker: BrokerInfo, topic_prefix: str) -> None:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap_servers=kafka_broker.bootstrap,
                        topic_prefix=topic_prefix,
                        kafka_idempotent_producer=kafka_broker.idempotent_producer)
    ensure_topics(settings, topic_specs(settings, ["grp-a", "grp-b"]))
    topics = topics_for(settings)
    web = GroupWeb(settings, Source(), ServiceMetrics("router"), NoFacts())
    producer = KafkaProducer(**kafka_python_common(settings), acks="all")

    def send(group: str, alert: HotspotAlert) -> None:
        producer.send(topics.hotspots(group), alert.model_dump_json().encode()).get(timeout=30)

    async def scenario() -> tuple[list[str], dict[str, HotspotAlert]]:
        send("grp-a", ALERT)
        send("grp-b", ALERT.model_copy(update={"alert_id": "al-b", "group": "grp-b"}))
        first = [a.alert_id for a in await web.alerts("grp-a")]
        send("grp-a", ALERT.model_copy(update={"count": "15", "late": True}))
        send("grp-a", ALERT.model_copy(update={"alert_id": "al-2"}))
        producer.send(topics.hotspots("grp-a"), b"not an alert").get(timeout=30)
        return first, {a.alert_id: a for a in await web.alerts("grp-a")}

    try:
        first, got = asyncio.run(scenario())
    finally:
        producer.close()
    assert first == ["al-1"]
    assert sorted(got) == ["al-1", "al-2"]
    assert got["al-1"].count == "15"
    assert got["al-1"].late
    assert web.alert_state["grp-a"].positions  # read up to here: the next call reads only news
