"""``s115hub status``: one screen for the operator and the designated officer, from durable facts.

Every figure is read back from a topic (raw envelopes, dead letters, the audit chain, the config
topic), so it is the same before and after any service restarts; see
``services/core/ops/status.py`` for where each figure comes from. Live rates are in each
service's ``/metrics`` (Prometheus), not here.

``parse_metrics`` and ``total_by`` stay for the tests and tools that read ``/metrics``.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

import typer

from services.core.config.settings import Settings
from services.core.ops.status import HubStatus, build_status, render_status

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_metrics(text: str) -> Samples:
    """Sample name -> [(labels, value)] from Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), float(s.value)))
    return dict(out)


def total_by(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    """Sum of ``name`` grouped by the label ``keys``."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in samples.get(name, []):
        out[tuple(labels.get(k, "") for k in keys)] += value
    return dict(out)


async def gather_status(settings: Settings, review_within_days: int = 30) -> HubStatus:
    from services.core.crypto.officer_trust import AnchorFile
    from services.core.kafka.topics import FEED_NAMES
    from services.core.ops.durable import read_facts
    from services.protocols.in_force import protocol_rows

    facts = await read_facts(settings)
    today = datetime.now(UTC).date()
    county = facts.config.county
    partners = {p.id: list(p.feeds) for p in county.partners} if county else {}
    groups = [g.id for g in county.groups] if county else []
    return build_status(partners=partners, groups=groups, feeds=list(FEED_NAMES),
                        envelopes=facts.envelopes, letters=facts.letters, events=facts.events,
                        protocols=protocol_rows(
                            facts.config, today,
                            AnchorFile(settings.resolved_officer_keys_file())),
                        today=today,
                        review_within_days=review_within_days)


def status(
    review_within: int = typer.Option(30, "--review-within",
                                      help="List protocols whose review_by falls within this "
                                           "many days (or has passed)."),
) -> None:
    """Every partner, feed, protocol and group with accepted, rejected, unrouted, withheld and
    generalised counts, deliveries and alerts per group, and reviews falling due: all read
    from the topics, so the figures survive restarts."""
    st = asyncio.run(gather_status(Settings(), review_within))
    typer.echo(render_status(st))
