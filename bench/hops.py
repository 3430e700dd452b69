"""Where a record's latency goes, hop by hop, from the timestamps the producers stamp on each
message (aiokafka sets a message's timestamp when it is handed to the producer, so each is "this
stage had finished the record and handed it on"):

    publish   the partner's producer handed it over (bench.kafka_intake)
    raw       ingest handed the sealed raw record to its producer       (key: hub record id)
    shared    depersonalise handed the shared record to its producer    (key: hub record id)
    deliver   the router handed the first delivery to its producer      (key: hub record id)

So ``raw - publish`` is the inbound hop plus ingest's work, ``shared - raw`` is the raw hop
(broker append, depersonalise's fetch wait and poll) plus depersonalise's batch, and so on.
A script helper for bench.run, not a test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from bench.workload import percentile
from services.core.config.settings import Settings
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for


def first_stamps(settings: Settings, topics: Iterable[str], wanted: set[str]) -> dict[str, float]:
    """hub record id -> earliest message timestamp (epoch s) on ``topics``, for ``wanted`` ids."""

    async def go() -> dict[str, float]:
        out: dict[str, float] = {}
        for topic in topics:
            async for m in scan(settings, topic):
                if m.key is None:
                    continue
                rid = m.key.decode(errors="replace")
                if rid in wanted:
                    ts = m.timestamp / 1000.0
                    if ts < out.get(rid, float("inf")):
                        out[rid] = ts
        return out

    return asyncio.run(go())


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p90": round(percentile(values, 90), 1),
            "p99": round(percentile(values, 99), 1), "max": round(max(values), 1)}


def hop_latencies(settings: Settings, sent_at: dict[str, float], delivered: dict[str, float]
                  ) -> dict[str, Any]:
    """Per-hop latency percentiles (ms) for the records in ``delivered`` (id -> first delivery
    stamp) published at ``sent_at`` (id -> publish time)."""
    t = topics_for(settings)
    ids = set(delivered)
    raw = first_stamps(settings, t.raw_all, ids)
    shared = first_stamps(settings, [t.shared], ids)
    hops: dict[str, list[float]] = {"publish->raw": [], "raw->shared": [],
                                    "shared->deliver": []}
    for rid, done in delivered.items():
        if rid not in raw or rid not in shared or rid not in sent_at:
            continue
        hops["publish->raw"].append((raw[rid] - sent_at[rid]) * 1000)
        hops["raw->shared"].append((shared[rid] - raw[rid]) * 1000)
        hops["shared->deliver"].append((done - shared[rid]) * 1000)
    return {name: _summary(v) for name, v in hops.items() if v}
