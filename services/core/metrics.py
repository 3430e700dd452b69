"""Prometheus names built in one place: ``s115hub_<service>_<thing>_<unit>``. Labels stay bounded
(partner, feed, group, protocol, reason): never a record or person id."""

from __future__ import annotations

from collections.abc import Sequence

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
