"""Topic names and their idempotent provisioning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core.settings import Settings

FEED_NAMES = ("police", "fire", "health", "council")


@dataclass(frozen=True)
class Topics:
    prefix: str

    def consumer_group(self, name: str) -> str:
        """Consumer groups carry the prefix too, so hubs sharing a broker never join each
        other's groups (and a rebalance in one cannot stall another)."""
        return f"{self.prefix}.{name}"

    def raw(self, feed: str) -> str:
        return f"{self.prefix}.raw.{feed}"

    def inbound(self, partner: str) -> str:
        return f"{self.prefix}.inbound.{partner}"

    def deliver(self, group: str) -> str:
        return f"{self.prefix}.deliver.{group}"

    def hotspots(self, group: str) -> str:
        return f"{self.prefix}.hotspots.{group}"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}.rejected"

    @property
    def shared(self) -> str:
        return f"{self.prefix}.shared"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def audit_facts(self) -> str:
        """Unchained audit facts from every producer; one chainer turns them into s115.audit."""
        return f"{self.prefix}.audit.facts"

    @property
    def audit_officer(self) -> str:
        """Configuration facts from the officer's CLI: the only path that may claim a config
        change (only the officer principal may write it under the ACLs)."""
        return f"{self.prefix}.audit.officer"

    @property
    def config(self) -> str:
        return f"{self.prefix}.config"

    @property
    def hotspot_state(self) -> str:
        """The router's hot-spot window state and the shared offsets it covers (compacted)."""
        return f"{self.prefix}.router.hotspot-state"

    @property
    def raw_all(self) -> list[str]:
        return [self.raw(f) for f in FEED_NAMES]


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.topic_prefix)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


def topic_specs(settings: Settings, groups: Sequence[str],
                partners: Sequence[str] = ()) -> list[TopicSpec]:
    t = topics_for(settings)
    n = settings.topic_partitions
    raw_cfg = {"retention.ms": str(settings.raw_retention_ms)}
    specs = [TopicSpec(t.raw(f), n, raw_cfg) for f in FEED_NAMES]
    specs += [TopicSpec(t.inbound(p), n, raw_cfg) for p in partners]
    specs += [
        TopicSpec(t.shared, n, {}),
        TopicSpec(t.rejected, 1, {}),
        # The audit chain must keep its order, so one partition; never deleted by retention.
        TopicSpec(t.audit, 1, {"retention.ms": "-1"}),
        # Facts are chained within seconds; kept a week so a stopped chainer can catch up.
        TopicSpec(t.audit_facts, 1, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(t.audit_officer, 1, {"retention.ms": str(7 * 24 * 3600 * 1000)}),
        TopicSpec(t.config, 1, {"cleanup.policy": "compact"}),
        TopicSpec(t.hotspot_state, 1, {"cleanup.policy": "compact"}),
    ]
    for g in groups:
        specs += [TopicSpec(t.deliver(g), n, {}), TopicSpec(t.hotspots(g), 1, {})]
    return specs
