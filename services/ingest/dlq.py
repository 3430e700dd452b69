"""Dead letters on s115.rejected: list them, and replay them (re-validated, or corrected by the
officer) through the same validation and sealing as live input.

A replay writes a marker (header ``kind: replayed``, key = rejection id) back to s115.rejected, so
``dlq list`` shows what was replayed and a second replay of the same letter is skipped unless
forced. Even a forced replay cannot duplicate downstream: the replayed record gets the hub record
id of its (partner, source id), and every later stage dedupes by it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.core.config.settings import Settings
from services.core.config.state import ConfigState
from services.core.crypto.errors import CryptoError
from services.core.crypto.fields import DataKeyStore
from services.core.crypto.keys import MasterKey
from services.core.errors import RecordRejected
from services.core.kafka.clients import make_producer
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for
from services.core.ops.dead_letters import REPLAYED, DeadLetter, collect, read_letters
from services.core.ops.metrics import ServiceMetrics
from services.ingest.records import RECORD_ID_INFO
from services.ingest.service import IngestService, time_limits
from services.ingest.validation import Item, load_json, validate_record

__all__ = ["REPLAYED", "DeadLetter", "ReplayResult", "collect", "read_corrections",
           "read_letters", "replay"]


async def read_config(settings: Settings) -> ConfigState:
    state = ConfigState()
    async for m in scan(settings, topics_for(settings).config):
        state.apply_lenient(m.key, m.value)
    return state


@dataclass
class ReplayResult:
    rejection_id: str
    status: str  # replayed, still_invalid, skipped, unreadable, not_granted
    detail: str
    hub_record_id: str | None = None


def original_of(letter: DeadLetter, store: DataKeyStore) -> Any:
    """The record as the partner sent it (parsed), from the sealed part of the dead letter."""
    sealed = letter.message.get("sealed")
    if not isinstance(sealed, dict):
        raise CryptoError("the dead letter holds no sealed original")
    payload = store.open_sealed(sealed, letter.rejection_id)
    if payload.get("original") is not None:
        return payload["original"]
    raw = payload.get("raw_text")
    if isinstance(raw, str):
        data, error = load_json(raw)
        if error is not None:
            raise RecordRejected([("", error)])
        return data
    raise RecordRejected([("", "the original record could not be parsed and is not kept")])


async def replay(settings: Settings, *, ids: set[str] | None, corrected: dict[str, Any],
                 force: bool = False, dry_run: bool = False) -> list[ReplayResult]:
    """Replay the dead letters named by ``ids`` (None: every one not yet replayed)."""
    master = MasterKey.from_env_or_file(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.resolved_master_key_file())
    store = DataKeyStore(settings.state_dir / "datakeys", master.kek())
    letters = await read_letters(settings)
    county = (await read_config(settings)).county
    known = {letter.rejection_id for letter in letters}
    results = [ReplayResult(r, "skipped", "no such dead letter")
               for r in sorted((ids or set()) | set(corrected)) if r not in known]
    if ids is None:  # --all: what ingest rejected and nobody has replayed yet
        wanted = [letter for letter in letters if letter.message.get("stage", "ingest") == "ingest"
                  and (force or not letter.replays or letter.rejection_id in corrected)]
    else:
        wanted = [letter for letter in letters
                  if letter.rejection_id in ids or letter.rejection_id in corrected]
    todo: list[tuple[DeadLetter, Any]] = []
    for letter in wanted:
        rid = letter.rejection_id
        if letter.replays and not force:
            results.append(ReplayResult(rid, "skipped", "already replayed (use --force)",
                                        letter.replays[-1].get("hub_record_id")))
            continue
        p = county.partner(letter.partner) if county else None
        if p is None or letter.feed not in p.feeds:
            results.append(ReplayResult(rid, "not_granted", f"partner {letter.partner!r} may not "
                                                            f"publish to feed {letter.feed!r}"))
            continue
        try:
            record = corrected[rid] if rid in corrected else original_of(letter, store)
            validate_record(letter.feed, record)
        except CryptoError as exc:
            results.append(ReplayResult(rid, "unreadable", str(exc)))
            continue
        except RecordRejected as exc:
            results.append(ReplayResult(rid, "still_invalid", str(exc)))
            continue
        todo.append((letter, record))
    if dry_run or not todo:
        results += [ReplayResult(letter.rejection_id, "would_replay", "valid now")
                    for letter, _ in todo]
        return results
    producer = make_producer(settings)
    await producer.start()
    try:
        svc = IngestService(topics=topics_for(settings), publisher=producer, sealer=store,
                            record_id_key=master.derive(RECORD_ID_INFO),
                            metrics=ServiceMetrics("dlq"), **time_limits(settings))
        for letter, record in todo:
            kind, pos = letter.position
            out = await svc.ingest(letter.partner, letter.feed, [Item(pos or 0, data=record)],
                                   kind, {"replay_of": letter.rejection_id})
            if not out.accepted:  # validated above, so only a sealing failure gets here
                results.append(ReplayResult(letter.rejection_id, "still_invalid",
                                            str(out.rejected[0]["errors"])))
                continue
            hub_id = out.accepted[0]["hub_record_id"]
            marker = {"replay_of": letter.rejection_id, "hub_record_id": hub_id,
                      "corrected": letter.rejection_id in corrected,
                      "replayed_at": datetime.now(UTC).isoformat()}
            fut = await producer.send(topics_for(settings).rejected,
                                      json.dumps(marker).encode(),
                                      key=letter.rejection_id.encode(),
                                      headers=[("kind", REPLAYED),
                                               ("partner", letter.partner.encode()),
                                               ("feed", letter.feed.encode())])
            await fut
            results.append(ReplayResult(letter.rejection_id, "replayed",
                                        "corrected" if marker["corrected"] else "re-validated",
                                        hub_id))
    finally:
        await producer.stop()
    return results


def read_corrections(text: str) -> dict[str, Any]:
    """``{"rejection_id": ..., "record": {...}}`` per line; RecordRejected names a bad line."""
    out: dict[str, Any] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        doc, error = load_json(line)
        if error is not None:
            raise RecordRejected([(f"line {n}", error)])
        if not isinstance(doc, dict) or not isinstance(doc.get("rejection_id"), str) \
                or "record" not in doc:
            raise RecordRejected([(f"line {n}", 'expected {"rejection_id": "...", "record": '
                                                '{...}}')])
        out[doc["rejection_id"]] = doc["record"]
    return out
