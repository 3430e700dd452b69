"""Follow the compacted config topic on the stage runner: catch up at start, then apply changes
live. Every partition is read (no consumer group: every replica needs the whole topic).

Fail-closed (issue 12): a message that does not validate is dead-lettered by the runner (stage
``config@<service>``) and the previous state stays (``ConfigState.apply_message``); a revocation
applies even when its value is malformed. If the follower stops (broker gone for good, a bug in
``on_change``) its task ends; services watch it with ``run_until_first_stops``, so they go not
ready and exit rather than carry on under stale configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from services.core.config.settings import Settings
from services.core.config.state import ConfigRejected, ConfigState
from services.core.kafka.stage_runner import (
    INVALID,
    Inputs,
    Item,
    Outcome,
    Reject,
    Stage,
    StageRunner,
)
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ServiceMetrics

CONFIG_FETCH_WAIT_MS = 250


class ConfigStage(Stage):
    retry_on_infra = True  # re-applying a key is idempotent: the topic is last-value-wins

    def __init__(self, topic: str, service: str, state: ConfigState,
                 on_change: Callable[[ConfigState], None]) -> None:
        self.name = f"config@{service}"
        # Config changes are rare and need no 20 ms reaction: a long fetch wait keeps the
        # follower's idle polling off the broker (stage_runner.Inputs).
        self.inputs = Inputs((topic,), None, assign_all=True, catch_up=True,
                             fetch_wait_ms=CONFIG_FETCH_WAIT_MS)
        self.state = state
        self.on_change = on_change
        self.live = False
        self.changed = False

    def handle(self, items: list[Item]) -> Iterator[Outcome]:
        for item in items:
            self.changed = True
            try:
                self.state.apply_message(item.msg.key, item.msg.value)
            except ConfigRejected as exc:
                yield Reject(str(exc), kind=INVALID)
                continue
            yield []

    def after_batch(self, processed: int) -> list[list[Any]]:
        if self.live and self.changed:
            self.changed = False
            self.on_change(self.state)
        return []


class ConfigFollower:
    def __init__(self, settings: Settings, on_change: Callable[[ConfigState], None], *,
                 metrics: ServiceMetrics | None = None, service: str = "service") -> None:
        self.settings = settings
        self.state = ConfigState()
        self.on_change = on_change
        self.ready = asyncio.Event()
        self.stage = ConfigStage(topics_for(settings).config, service, self.state, on_change)
        self.runner = StageRunner(settings, self.stage, metrics or ServiceMetrics(service),
                                  service=service)
        self._stop = asyncio.Event()
        self._linked: asyncio.Task[None] | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Return once the topic has been read to its end and applied. ``stop``: the service's
        stop event; the follower stops when it is set. Services wait for ``task`` beside their
        stages (run_until_first_stops) before they call ``stop()``, so without this link a
        stopping service waited for a follower nothing stopped, until it was SIGKILLed."""
        if stop is not None:
            self._linked = asyncio.create_task(self._stop_with(stop))
        self.task = asyncio.create_task(self.runner.run(self._stop))
        waiter = asyncio.create_task(self.runner.caught_up.wait())
        await asyncio.wait([self.task, waiter], return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            await self.task  # raises what stopped it
            if self._stop.is_set():
                return  # the service is stopping during start-up: not a config failure
            raise ConfigRejected("config follower stopped before it had read the topic")
        self.stage.changed = False
        self.on_change(self.state)
        self.stage.live = True
        self.ready.set()

    def alive(self) -> tuple[bool, str]:
        if not self.ready.is_set():
            return False, "config not loaded"
        if self.task is None or self.task.done():
            return False, "config follower stopped"
        return self.runner.ready()

    async def _stop_with(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._linked is not None:
            self._linked.cancel()
        self.ready.clear()
        if self.task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.task
