"""``s115hub status``: one screen for the operator and the designated officer.

Where each figure comes from (chosen so every number has one source of truth):

* per feed, *last record seen*: the newest envelope on ``s115.raw.<feed>`` (read from the topic,
  so it survives service restarts, unlike an in-memory counter);
* per feed, *rates and rejections*: ingest's ``/metrics`` scraped twice ``--sample`` seconds
  apart (counters since the service started, and their rate over the sample);
* *protocols live / review due / blocking*: the config topic, judged by the same lifecycle code
  the depersonaliser uses, plus depersonalise's ``records_blocked_total`` by cause;
* per group, *deliveries and alerts*: the router's ``/metrics``.

The pure part (parsing and summarising) is separate from the fetching, and tested on its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import typer

from services.core.settings import Settings

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


@dataclass
class FeedRow:
    feed: str
    last_seen: datetime | None = None
    accepted: float = 0
    rejected: float = 0
    rate_per_s: float | None = None
    rejections: dict[str, float] = field(default_factory=dict)


@dataclass
class Status:
    feeds: list[FeedRow]
    protocols: list[dict[str, Any]]
    blocked: dict[str, float]
    groups: dict[str, dict[str, float]]
    unreachable: list[str]


def summarise(feeds: list[str], last_seen: dict[str, datetime], ingest0: Samples | None,
              ingest1: Samples | None, dt: float, depersonalise: Samples | None,
              router: Samples | None, protocols: list[dict[str, Any]],
              unreachable: list[str]) -> Status:
    rows = []
    accepted1 = total_by(ingest1 or {}, "s115hub_ingest_records_in_total", "feed")
    accepted0 = total_by(ingest0 or {}, "s115hub_ingest_records_in_total", "feed")
    rejected = total_by(ingest1 or {}, "s115hub_ingest_records_rejected_total", "feed", "reason")
    for feed in feeds:
        row = FeedRow(feed, last_seen.get(feed), accepted1.get((feed,), 0.0))
        row.rejections = {reason: n for (f, reason), n in rejected.items() if f == feed and n}
        row.rejected = sum(row.rejections.values())
        if ingest0 is not None and ingest1 is not None and dt > 0:
            row.rate_per_s = (accepted1.get((feed,), 0.0) - accepted0.get((feed,), 0.0)) / dt
        rows.append(row)
    blocked = {cause: n for (cause,), n in total_by(
        depersonalise or {}, "s115hub_depersonalise_records_blocked_total", "cause").items() if n}
    groups: dict[str, dict[str, float]] = defaultdict(lambda: {"deliveries": 0.0, "alerts": 0.0})
    for (g,), n in total_by(router or {}, "s115hub_router_deliveries_total", "group").items():
        groups[g]["deliveries"] += n
    for (g,), n in total_by(router or {}, "s115hub_router_hotspot_alerts_total", "group").items():
        groups[g]["alerts"] += n
    return Status(rows, protocols, blocked, dict(groups), unreachable)


def render(st: Status) -> str:
    lines = ["FEEDS", f"  {'feed':<9} {'last record seen (UTC)':<22} {'accepted':>9} "
                      f"{'per s':>7} {'rejected':>9}  top rejection reasons"]
    for r in st.feeds:
        seen = r.last_seen.strftime("%Y-%m-%d %H:%M:%S") if r.last_seen else "never"
        rate = f"{r.rate_per_s:.1f}" if r.rate_per_s is not None else "-"
        top = ", ".join(f"{k} {int(v)}" for k, v in
                        sorted(r.rejections.items(), key=lambda kv: -kv[1])[:3])
        lines.append(f"  {r.feed:<9} {seen:<22} {int(r.accepted):>9} {rate:>7} "
                     f"{int(r.rejected):>9}  {top}".rstrip())
    lines += ["", "PROTOCOLS"]
    for p in st.protocols:
        state = "LIVE" if p["live"] else "BLOCKING"
        due = " review due" if p["review_due"] else ""
        why = f" ({'; '.join(p['reasons'])})" if p["reasons"] else ""
        lines.append(f"  {p['ref']:<28} {state}{due}{why}")
    if not st.protocols:
        lines.append("  none in the config topic")
    if st.blocked:
        lines.append("  records blocked: " + ", ".join(
            f"{k} {int(v)}" for k, v in sorted(st.blocked.items())))
    lines += ["", "GROUPS", f"  {'group':<28} {'deliveries':>10} {'alerts':>7}"]
    for g, c in sorted(st.groups.items()):
        lines.append(f"  {g:<28} {int(c['deliveries']):>10} {int(c['alerts']):>7}")
    if st.unreachable:
        lines += ["", "unreachable: " + ", ".join(st.unreachable)
                  + " (figures from it are missing)"]
    return "\n".join(lines)


# -- fetching ---------------------------------------------------------------------------------


def _scrape(url: str) -> Samples | None:
    import httpx

    try:
        r = httpx.get(f"{url}/metrics", timeout=5)
        r.raise_for_status()
    except httpx.HTTPError:
        return None
    return parse_metrics(r.text)


async def _last_seen(settings: Settings, feeds: list[str]) -> dict[str, datetime]:
    """Newest ``received_at`` on each raw topic, reading only a tail of each partition."""
    out: dict[str, datetime] = {}
    for feed in feeds:
        at = await _newest_envelope(settings, feed)
        if at is not None:
            out[feed] = at
    return out


async def _newest_envelope(settings: Settings, feed: str) -> datetime | None:
    from aiokafka import TopicPartition

    from services.core.kafka import make_consumer, topic_partitions
    from services.core.topic_scan import drain
    from services.core.topics import topics_for

    topic = topics_for(settings).raw(feed)
    newest: datetime | None = None
    # One consumer per topic: re-assigning one consumer to the next topic lost the seeks.
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        if not tps:
            return None
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            # A short tail is enough: drain reads past tansu's under-reported end.
            consumer.seek(tp, max(0, ends[tp] - 20))
        async for msg in drain(consumer, tps):
            try:
                at = datetime.fromisoformat(json.loads(msg.value)["envelope"]["received_at"])
            except (ValueError, KeyError, TypeError):
                continue
            if newest is None or at > newest:
                newest = at
    finally:
        await consumer.stop()
    return newest


async def _protocols(settings: Settings) -> list[dict[str, Any]]:
    from services.core.config_state import ConfigState
    from services.core.topic_scan import scan
    from services.core.topics import topics_for
    from services.depersonalise.policy import protocol_set_of

    state = ConfigState()
    async for msg in scan(settings, topics_for(settings).config):
        state.apply_message(msg.key, msg.value)
    pset, errors = protocol_set_of(state)
    today = datetime.now(UTC).date()
    rows = [{"ref": s.ref, "live": s.live, "review_due": s.review_due, "reasons": s.reasons}
            for s in pset.statuses(today)]
    rows += [{"ref": ref, "live": False, "review_due": False, "reasons": [f"unreadable: {e}"]}
             for ref, e in errors.items()]
    return sorted(rows, key=lambda r: str(r["ref"]))


def status(
    sample: float = typer.Option(3.0, help="Seconds between two metric scrapes, for rates "
                                           "(0: totals only)."),
    ingest_url: str = typer.Option(None, help="Default: http://<host>:<ingest_port>."),
    depersonalise_url: str = typer.Option(None),
    router_url: str = typer.Option(None),
) -> None:
    """Per feed: last record seen, rate and rejections; protocols live, due for review or
    blocking; per group: deliveries and alerts."""
    from services.core.topics import FEED_NAMES

    settings = Settings()
    urls = {
        "ingest": ingest_url or f"http://{settings.host}:{settings.ingest_port}",
        "depersonalise": depersonalise_url or f"http://{settings.host}:{settings.depersonalise_port}",
        "router": router_url or f"http://{settings.host}:{settings.router_port}",
    }
    first = _scrape(urls["ingest"]) if sample > 0 else None
    t0 = time.monotonic()

    async def topics() -> tuple[dict[str, datetime], list[dict[str, Any]]]:
        return await _last_seen(settings, list(FEED_NAMES)), await _protocols(settings)

    last_seen, protocols = asyncio.run(topics())
    if sample > 0:
        time.sleep(max(0.0, sample - (time.monotonic() - t0)))
    dt = time.monotonic() - t0
    scraped = {name: _scrape(url) for name, url in urls.items()}
    unreachable = [f"{name} ({urls[name]})" for name, s in scraped.items() if s is None]
    st = summarise(list(FEED_NAMES), last_seen, first, scraped["ingest"], dt,
                   scraped["depersonalise"], scraped["router"], protocols, unreachable)
    typer.echo(render(st))
