"""Read the hub's durable facts back from their topics (raw envelopes, config, dead letters,
the audit chain): the sources of ``status``, ``reconcile`` and the officer page, which must give
the same figures after any restart. Kafka glue only; what the figures mean is decided in
``reconcile.py`` and ``hub_status.py``."""

from __future__ import annotations

import json
from typing import Any

from services.core.config_state import ConfigState
from services.core.settings import Settings
from services.core.topic_scan import scan
from services.core.topics import FEED_NAMES, topics_for


async def read_envelopes(settings: Settings, feeds: tuple[str, ...] = FEED_NAMES
                         ) -> list[dict[str, Any]]:
    """Every envelope on the raw topics (the sealed personal fields are not even parsed out)."""
    out: list[dict[str, Any]] = []
    t = topics_for(settings)
    for feed in feeds:
        async for msg in scan(settings, t.raw(feed)):
            try:
                env = json.loads(msg.value)["envelope"]
            except (ValueError, KeyError, TypeError):
                continue  # only ingest writes here; depersonalise counts anything else
            if isinstance(env, dict):
                out.append(env)
    return out


async def read_config_state(settings: Settings) -> ConfigState:
    state = ConfigState()
    async for msg in scan(settings, topics_for(settings).config):
        state.apply_message(msg.key, msg.value)
    return state


async def read_events(settings: Settings) -> list[Any]:
    """The audit chain's events as stored (dicts, in order; not verified here)."""
    from services.core.audit_io import read_chain

    return [e for e in (await read_chain(settings)).events if isinstance(e, dict)]
