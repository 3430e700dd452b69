"""The front door's logic: validate, seal, publish, answer per record. Kafka is behind a small
``Publisher`` so this runs the same from HTTP, the Kafka inbound topics and the CLI."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from services.core.errors import BrokerUnavailable, RecordRejected
from services.core.metrics import ServiceMetrics
from services.core.topics import Topics
from services.ingest.records import Sealer, build_raw, build_rejection
from services.ingest.validation import Item, validate_record


class Publisher(Protocol):
    async def send(self, topic: str, *, value: bytes, key: bytes | None,
                   headers: list[tuple[str, bytes]]) -> asyncio.Future[Any]: ...


@dataclass
class Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": self.rejected,
                "counts": {"accepted": len(self.accepted), "rejected": len(self.rejected)}}


class IngestService:
    def __init__(self, *, topics: Topics, publisher: Publisher, sealer: Sealer,
                 record_id_key: bytes, metrics: ServiceMetrics) -> None:
        self.topics = topics
        self.publisher = publisher
        self.sealer = sealer
        self.record_id_key = record_id_key
        self.m_in = metrics.counter("records_in_total", "Records accepted and written to a raw "
                                    "topic.", ["partner", "feed"])
        self.m_rejected = metrics.counter("records_rejected_total", "Records rejected, by reason.",
                                          ["partner", "feed", "reason"])

    async def ingest(self, partner: str, feed: str, items: Iterable[Item],
                     position_kind: str = "index") -> Outcome:
        """Validate and publish a batch; good records go through whatever the bad ones do.

        Nothing is reported accepted before the broker has acknowledged it (acks=all). If the
        broker fails, BrokerUnavailable is raised and the caller must answer that nothing in the
        batch is acknowledged; a retry is safe because record ids are deterministic.
        """
        now = datetime.now(UTC)
        out = Outcome()
        sends: list[Any] = []
        for item in items:
            try:
                if item.error is not None:
                    raise RecordRejected([("", item.error)])
                record = validate_record(feed, item.data)
                raw = build_raw(record, partner=partner, feed=feed,
                                record_id_key=self.record_id_key, sealer=self.sealer, now=now)
            except RecordRejected as rej:
                rid = "x" + secrets.token_hex(10)
                msg = build_rejection(
                    partner=partner, feed=feed, position=item.position,
                    position_kind=position_kind, problems=rej.problems, original=item.data,
                    raw_text=item.raw, sealer=self.sealer, now=now, rejection_id=rid)
                headers = [("partner", partner.encode()), ("feed", feed.encode()),
                           ("reason", _reason(rej.problems).encode()),
                           (position_kind, str(item.position).encode())]
                sends.append(await self._send(self.topics.rejected, msg, rid, headers))
                out.rejected.append({position_kind: item.position, "rejection_id": rid,
                                     "errors": msg["problems"]})
                self.m_rejected.labels(partner, feed, _reason_label(rej.problems)).inc()
                continue
            rid = raw.envelope.hub_record_id
            sends.append(await self._send(self.topics.raw(feed), raw.model_dump(mode="json"), rid,
                                          [("partner", partner.encode())]))
            out.accepted.append({position_kind: item.position, "hub_record_id": rid,
                                 "source_id": raw.envelope.source_id})
        try:
            await asyncio.gather(*sends)
        except Exception as exc:  # any producer failure: nothing in this batch is acknowledged
            raise BrokerUnavailable(f"the broker did not acknowledge the batch: {exc}") from exc
        self.m_in.labels(partner, feed).inc(len(out.accepted))
        return out

    async def _send(self, topic: str, value: dict[str, Any], key: str,
                    headers: list[tuple[str, bytes]]) -> Any:
        data = json.dumps(value, separators=(",", ":")).encode()
        try:
            return await self.publisher.send(topic, value=data, key=key.encode(), headers=headers)
        except Exception as exc:
            raise BrokerUnavailable(f"could not hand the record to the producer: {exc}") from exc


def _reason(problems: list[tuple[str, str]]) -> str:
    return "; ".join(f"{p or '/'}: {r}" for p, r in problems)[:500]


def _reason_label(problems: list[tuple[str, str]]) -> str:
    """A bounded label: the kind of failure, never the offending value."""
    first = problems[0][1] if problems else ""
    if first.startswith("not valid JSON"):
        return "bad_json"
    if first.startswith("Field required"):
        return "missing_field"
    if first.startswith("Extra inputs"):
        return "unknown_field"
    return "invalid_value"
