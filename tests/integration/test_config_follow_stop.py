"""The config follower stops with its service. Every service waits for the follower's task beside
its stages (``run_until_first_stops``) before it calls ``follower.stop()``; a follower that only
stopped on ``stop()`` kept a SIGTERMed router, depersonalise and ingest alive until SIGKILL."""

from __future__ import annotations

import asyncio

import pytest

from services.core.config.follow import ConfigFollower
from services.core.config.settings import Settings
from services.core.kafka.topics import base_topic_specs, provision_topics, topics_for
from tests.conftest import BrokerInfo

pytestmark = pytest.mark.kafka


def test_given_the_service_stop_event_set_then_the_config_follower_task_ends(
        kafka_broker: BrokerInfo, topic_prefix: str) -> None:
    settings = Settings(kafka_bootstrap_servers=kafka_broker.bootstrap, topic_prefix=topic_prefix,
                        kafka_idempotent_producer=kafka_broker.idempotent_producer)
    config = topics_for(settings).config
    provision_topics(settings, [s for s in base_topic_specs(settings) if s.name == config],
                     wait_for_broker=30)

    async def go() -> bool:
        stop = asyncio.Event()
        follower = ConfigFollower(settings, lambda state: None, service="test")
        await follower.start(stop)
        try:
            assert follower.task is not None
            assert not follower.task.done()
            stop.set()
            # A deadline, not a timing: the task must end without follower.stop() being called.
            done, _ = await asyncio.wait([follower.task], timeout=30)
            return bool(done)
        finally:
            await follower.stop()

    assert asyncio.run(go()), "the follower kept running after the service's stop event was set"
