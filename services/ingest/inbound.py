"""Kafka-native publishers: each partner writes JSON records to its own ``s115.inbound.<partner>``
topic (ACLs let only that partner write there, see deploy/security), and ingest validates them
exactly as it validates HTTP input. Rejections go to s115.rejected with the topic, partition and
offset as context; there is no reply channel, so a Kafka publisher learns of rejections from the
officer's ``s115hub dlq list``.

Message contract: value is one JSON record of the feed; header ``feed`` names the feed, and may be
left out when the partner's config grants exactly one feed. The partner is the topic's, never a
header's: a header is whatever the producer wrote, the topic is what the ACLs vouch for.

Offsets are committed only after ingest's own writes are acknowledged, so a crash or a broker
outage re-reads the batch; deterministic hub record ids make that re-read harmless downstream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from schemas.feeds import FEEDS
from services.core.config.county import County
from services.core.crypto.errors import CryptoError
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import Inputs, Item, Outcome, Stage
from services.core.kafka.topics import Topics
from services.ingest.service import IngestService
from services.ingest.validation import Item as Item_
from services.ingest.validation import load_json

log = logging.getLogger(__name__)
CONSUMER_GROUP = "ingest-inbound"
UNKNOWN_FEED = "unknown"


def feed_of(county: County | None, partner: str, header: bytes | None) -> tuple[str, str | None]:
    """(feed, None) or (feed label, reason the record cannot be taken). Pure."""
    p = county.partner(partner) if county else None
    if p is None:
        return UNKNOWN_FEED, f"partner {partner!r} is not in the county configuration"
    if header is None:
        if len(p.feeds) == 1:
            return p.feeds[0], None
        return UNKNOWN_FEED, (f"partner {partner!r} publishes several feeds; name one in the "
                              f"'feed' header ({', '.join(p.feeds)})")
    name = header.decode("utf-8", "replace")
    if name not in FEEDS:
        return UNKNOWN_FEED, f"the 'feed' header names no known feed; known: {', '.join(FEEDS)}"
    if name not in p.feeds:
        return name, f"partner {partner!r} may not publish to feed {name!r}"
    return name, None


def item_of(offset: int, value: bytes | None, problem: str | None) -> Item_:
    if problem is not None:
        return Item_(offset, error=problem)
    if value is None:
        return Item_(offset, error="the message has no value")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Item_(offset, error=f"the message is not UTF-8: {exc.reason} at byte {exc.start}")
    data, error = load_json(text)
    return Item_(offset, data=data, error=error, raw=text if error else None)


class InboundStage(Stage):
    """Kafka intake on the stage runner. Ingest's own rules decide per record (a rejected record
    is ingest's dead letter, sealed for replay, as from HTTP); the runner owns polling,
    committing and the error policy for whatever ingest could not even judge. Ingest writes its
    raw records and letters through its ``Publisher`` and waits for their acknowledgement itself,
    because the same ``IngestService`` answers HTTP partners, who must not be told "accepted"
    before the broker has the record. A broker failure re-reads the batch after a pause
    (``retry_on_infra``): deterministic hub record ids make the re-read harmless."""

    name = "inbound"
    retry_on_infra = True

    def __init__(self, topics: Topics, service: Callable[[], IngestService],
                 county: Callable[[], County | None], on_broker_error: Callable[[], None]) -> None:
        self.topics = topics
        self.service = service
        self.county = county
        self.on_broker_error = on_broker_error
        self.prefix = topics.inbound("")
        self.inputs = Inputs((), topics.consumer_group(CONSUMER_GROUP))

    def input_topics(self) -> list[str]:
        c = self.county()
        return sorted(self.topics.inbound(p.id) for p in c.partners) if c else []

    def decode(self, msg: Any) -> Any:
        return msg

    async def _handle(self, items: list[Item]) -> list[Outcome]:
        svc = self.service()
        county = self.county()
        by_tp: dict[tuple[str, int], list[Any]] = {}
        for item in items:
            by_tp.setdefault((item.msg.topic, item.msg.partition), []).append(item.msg)
        handed = []
        try:
            for (topic, partition), msgs in by_tp.items():
                partner = topic.removeprefix(self.prefix)
                context = {"topic": topic, "partition": str(partition)}
                # Consecutive runs of one feed go as one batch; order in a partition is kept.
                run: list[Item_] = []
                run_feed: str | None = None
                for msg in msgs:
                    header = next((v for k, v in msg.headers or () if k == "feed"), None)
                    feed, problem = feed_of(county, partner, header)
                    if run and feed != run_feed:
                        handed.append(await svc.hand_over(partner, run_feed or UNKNOWN_FEED, run,
                                                          "offset", context))
                        run = []
                    run_feed = feed
                    run.append(item_of(msg.offset, msg.value, problem))
                if run:
                    handed.append(await svc.hand_over(partner, run_feed or UNKNOWN_FEED, run,
                                                      "offset", context))
            # Every run of the batch is handed to the producer first, then one wait for all
            # acknowledgements: a wait per run cost one broker round trip per inbound partition.
            await svc.acknowledged(handed)
        except (BrokerUnavailable, CryptoError) as exc:
            log.warning("inbound batch not taken, will re-read it: %s", exc)
            self.on_broker_error()
            raise BrokerUnavailable(str(exc)) from exc
        return [[] for _ in items]

    def handle(self, items: list[Item]) -> Awaitable[list[Outcome]]:
        return self._handle(items)
