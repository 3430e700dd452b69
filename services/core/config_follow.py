"""Follow the compacted config topic: catch up at start, then apply changes live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from services.core.config_state import ConfigState
from services.core.kafka import make_consumer
from services.core.settings import Settings
from services.core.topic_scan import drain
from services.core.topics import topics_for


class ConfigFollower:
    def __init__(self, settings: Settings, on_change: Callable[[ConfigState], None]) -> None:
        self.settings = settings
        self.state = ConfigState()
        self.on_change = on_change
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from aiokafka import TopicPartition

        topic = topics_for(self.settings).config
        # No consumer group: every replica must read the whole topic from the start.
        self._consumer = make_consumer(self.settings, group_id=None)
        await self._consumer.start()
        tp = TopicPartition(topic, 0)
        self._consumer.assign([tp])
        await self._consumer.seek_to_beginning(tp)
        async for msg in drain(self._consumer, [tp]):
            self.state.apply_message(msg.key, msg.value)
        self.on_change(self.state)
        self.ready.set()
        self._task = asyncio.create_task(self._follow(tp))

    async def _follow(self, tp: object) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            changed = False
            for msgs in batch.values():
                for msg in msgs:
                    self.state.apply_message(msg.key, msg.value)
                    changed = True
            if changed:
                self.on_change(self.state)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
