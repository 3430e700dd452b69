"""Reading topics back in tests: every message, and waiting on a condition with a deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from services.core.config.settings import Settings
from services.core.kafka.scan import scan

T = TypeVar("T")


def read_topic(settings: Settings, topic: str) -> list[Any]:
    """Every message now on ``topic`` (key, value bytes, headers), from the beginning."""

    async def go() -> list[Any]:
        return [m async for m in scan(settings, topic)]

    return asyncio.run(go())


def read_json(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.value) for m in read_topic(settings, topic)]


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float,
             interval: float = 0.5, what: str = "condition") -> T:
    """Poll ``probe`` until ``done(result)``; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last seen: {str(result)[:500]}")
        time.sleep(interval)
