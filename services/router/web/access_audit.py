"""Reads by group members on the audit chain: every page view, stream connection, export, records
list and tasking pack is an ``access`` fact (action ``group.read``) naming the member, the group
and what was read.

Built by ``access_fact`` in the shared audit-fact helpers and sent on ``s115.audit.facts``, the
path every router fact takes: the chainer validates it with the typed ``AuditFact`` contract and
appends it to ``s115.audit``. Not kind ``config``: the chainer takes config facts only from the
officer's topic, and a read is not a configuration change.
The actor is ``<member>@<group>``; a token issued before members existed has no member and is
named ``token:<id>`` instead, so even a shared token's reads are attributable to that token.

Fail closed: the read is served only once its fact is acknowledged by the broker. A hub that
cannot record who read what does not show it (the caller answers 503). Aggregates the page
refreshes every few seconds (ward counts, trend) are covered by the page-view event, not one
event per refresh, which would bury the chain in noise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from services.core.audit.facts import access_fact, encode_fact, fact_key
from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import Bearer
from services.core.kafka.topics import topics_for


class FactSink(Protocol):
    async def send(self, fact: Mapping[str, Any]) -> None: ...


def reader_name(bearer: Bearer) -> str:
    return bearer.member or f"token:{bearer.token_id}"


def read_fact(group: str, bearer: Bearer, what: str,
              detail: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fact "``bearer``'s member read ``what`` of ``group``" (``what``: page, stream,
    export.csv, export.geojson, records, pack)."""
    return access_fact(group, f"{reader_name(bearer)}@{group}", what, detail={
        "group": group, "member": bearer.member, "token_id": bearer.token_id,
        **dict(detail or {})})


class KafkaFactSink:
    """One idempotent-enough producer for the web app's facts, started on first use (a web app
    that is never read from opens no connection). The chainer dedupes by fact id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topics_for(settings).audit_facts
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def send(self, fact: Mapping[str, Any]) -> None:
        from services.core.kafka.clients import make_producer

        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()  # else it is left unclosed; the next read retries
                    raise
                self._producer = producer
        await asyncio.wait_for(
            self._producer.send_and_wait(self.topic, encode_fact(fact), key=fact_key(fact)),
            timeout=15)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
