"""SSE event ids that let a client resume exactly where it stopped. Pure.

An id is the reader's position after the event on every partition it follows, e.g.
``d0-12.d1-5.d2-7.h0-3`` (``d``: the group's delivery topic, ``h``: its hot-spot topic; each
entry is ``<topic><partition>-<next offset>``). A browser's EventSource sends the last id back in
``Last-Event-ID`` when it reconnects, so no consumer group (and no server-side state) is needed
to resume, and replicas behind a load balancer can serve any reconnect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.core.errors import HubError

KINDS = ("d", "h")
_ITEM = re.compile(r"^([dh])(\d{1,4})-(\d{1,19})$")
MAX_ID_CHARS = 2000

Position = tuple[str, int]  # (kind, partition)


class BadEventId(HubError):
    """A Last-Event-ID the hub did not issue."""


def encode(positions: Mapping[Position, int]) -> str:
    return ".".join(f"{k}{p}-{off}" for (k, p), off in sorted(positions.items()))


def decode(text: str) -> dict[Position, int]:
    text = text.strip()
    if not text:
        return {}
    if len(text) > MAX_ID_CHARS:
        raise BadEventId(f"Last-Event-ID longer than {MAX_ID_CHARS} characters")
    out: dict[Position, int] = {}
    for item in text.split("."):
        m = _ITEM.match(item)
        if not m:
            raise BadEventId(f"Last-Event-ID item {item[:40]!r} is not <d|h><partition>-<offset>")
        out[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return out
