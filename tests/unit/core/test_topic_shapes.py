"""What makes an existing topic the wrong shape for the hub (pure; the broker side is in
tests/e2e/test_start_order.py)."""

from __future__ import annotations

from services.core.config.settings import Settings
from services.core.kafka.topics import TopicSpec, base_topic_specs, shape_problems

CONFIG = TopicSpec("s115.config", 1, {"cleanup.policy": "compact"})
AUDIT = TopicSpec("s115.audit", 1, {"retention.ms": "-1"})
RAW = TopicSpec("s115.raw.police", 3, {"retention.ms": "604800000"})


def test_given_a_config_topic_with_four_partitions_then_it_is_refused() -> None:
    [why] = shape_problems(CONFIG, 4, {"cleanup.policy": "compact"})
    assert "has 4 partitions, must have exactly 1" in why


def test_given_a_config_topic_that_deletes_then_it_is_refused() -> None:
    [why] = shape_problems(CONFIG, 1, {"cleanup.policy": "delete"})
    assert "cleanup.policy=delete, must be compact" in why


def test_given_an_audit_topic_with_retention_then_it_is_refused() -> None:
    [why] = shape_problems(AUDIT, 1, {"retention.ms": "604800000", "cleanup.policy": "delete"})
    assert "retention.ms=604800000, must be -1" in why


def test_given_a_keyed_topic_with_more_partitions_then_it_is_accepted() -> None:
    assert shape_problems(RAW, 6, {"cleanup.policy": "delete", "retention.ms": "1"}) == []


def test_given_a_broker_that_reports_no_configs_then_only_partitions_are_checked() -> None:
    assert shape_problems(CONFIG, 1, {}) == []


def test_every_topic_a_service_reads_at_start_up_is_in_the_base_specs() -> None:
    names = {s.name for s in base_topic_specs(Settings(topic_prefix="p"))}
    assert {"p.config", "p.shared", "p.audit", "p.audit.facts", "p.rejected",
            "p.router.hotspot-state", "p.raw.police", "p.raw.council"} <= names
