"""Prometheus names built in one place: ``s115hub_<service>_<thing>_<unit>``. Labels stay bounded
(partner, feed, group, protocol, reason): never a record or person id."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()

    def _name(self, thing: str) -> str:
        return f"s115hub_{self.service}_{thing}"

    def counter(self, thing: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(self._name(thing), doc, list(labels), registry=self.registry)

    def gauge(self, thing: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(self._name(thing), doc, list(labels), registry=self.registry)

    def histogram(self, thing: str, doc: str, labels: Sequence[str] = ()) -> Histogram:
        return Histogram(self._name(thing), doc, list(labels), registry=self.registry,
                         buckets=LATENCY_BUCKETS)


class ConsumerLag:
    """``s115hub_<service>_consumer_lag_records{topic}``: end offset minus committed offset,
    summed over the partitions this consumer owns (the end offset is the high watermark of the
    last fetch response). Labelled by topic only (topics are named by
    config, so bounded), refreshed at most every ``every`` seconds because each refresh asks the
    broker.

    On the embedded broker end offsets are under-reported (see topic_scan), so lag there reads
    low, never high; it is clamped at zero.
    """

    def __init__(self, metrics: ServiceMetrics, every: float = 5.0) -> None:
        self.gauge = metrics.gauge("consumer_lag_records",
                                   "Records not yet processed: end offset minus committed offset.",
                                   ["topic"])
        self.every = every
        self._at: dict[int, float] = {}  # per consumer: a service may own several

    def due(self, consumer: Any) -> bool:
        return time.monotonic() - self._at.get(id(consumer), -float("inf")) >= self.every

    async def maybe_update(self, consumer: Any) -> None:
        now = time.monotonic()
        if not self.due(consumer):
            return
        self._at[id(consumer)] = now
        tps = list(consumer.assignment())
        if not tps:
            return
        # The high watermark the last fetch response carried, not a ListOffsets request: on
        # tansu those cost the broker enough to stall the whole hub for a second every five
        # (measured at 200 records/s, issue 12). A partition not fetched yet is left out.
        lag: dict[str, int] = {}
        for tp in tps:
            end = consumer.highwater(tp)
            if end is None:
                continue
            committed = await consumer.committed(tp)
            behind = max(0, end - (committed or 0))
            lag[tp.topic] = lag.get(tp.topic, 0) + behind
        for topic, n in lag.items():
            self.gauge.labels(topic).set(n)
