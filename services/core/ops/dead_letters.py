"""Dead letters on ``s115.rejected``, read back: each letter with the replay markers that refer
to it. Shared by the CLI (``dlq``, ``reconcile``) and the officer page, which must not import the
ingest service. A letter holds context and reasons in clear and the original sealed; nothing here
opens the seal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas.dead_letter import DeadLetter as Letter
from services.core.config.settings import Settings
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for

REPLAYED = b"replayed"


@dataclass
class DeadLetter:
    rejection_id: str
    message: dict[str, Any]
    replays: list[dict[str, Any]] = field(default_factory=list)

    @property
    def partner(self) -> str:
        return str(self.message.get("partner", ""))

    @property
    def feed(self) -> str:
        return str(self.message.get("feed", ""))

    @property
    def source_id(self) -> str | None:
        """The partner's own reference, when the letter carries one (see rejected_source_id)."""
        sid = self.message.get("source_id")
        return sid if isinstance(sid, str) else None

    @property
    def position(self) -> tuple[str, Any]:
        for kind in ("line", "index", "offset"):
            if kind in self.message:
                return kind, self.message[kind]
        return "index", None

    def summary(self) -> dict[str, Any]:
        """What ``dlq list`` shows: context and reasons, never the sealed original."""
        kind, pos = self.position
        return {"rejection_id": self.rejection_id, "rejected_at": self.message.get("rejected_at"),
                "stage": self.message.get("stage", "ingest"), "partner": self.partner,
                "feed": self.feed, "source_id": self.source_id, kind: pos,
                "problems": self.message.get("problems", []),
                "replayed": [r.get("hub_record_id") for r in self.replays],
                **({"hub_record_id": self.message["hub_record_id"]}
                   if isinstance(self.message.get("hub_record_id"), str) else {})}


def collect(messages: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
            ) -> list[DeadLetter]:
    """Dead letters in topic order, each with the replay markers that refer to it. Pure."""
    letters: dict[str, DeadLetter] = {}
    markers: list[dict[str, Any]] = []
    for _key, value, headers in messages:
        if value is None:
            continue
        try:
            doc = json.loads(value)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        if dict(headers).get("kind") == REPLAYED:
            markers.append(doc)
            continue
        try:
            # Read with the contract (schemas/dead_letter.py); what does not fit is not a letter.
            rid = Letter.model_validate(doc).rejection_id
        except ValidationError:
            continue
        letters[rid] = DeadLetter(rid, doc)
    for m in markers:
        letter = letters.get(str(m.get("replay_of")))
        if letter is not None:
            letter.replays.append(m)
    return list(letters.values())


async def read_letters(settings: Settings) -> list[DeadLetter]:
    topic = topics_for(settings).rejected
    return collect([(m.key, m.value, list(m.headers or ())) async for m in scan(settings, topic)])


