"""``s115hub import police-uk``: the same validation, sealing and dead-lettering as the HTTP API,
driven from a file, with progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.core.config.settings import Settings
from services.core.crypto.keys import MasterKey
from services.core.kafka.clients import make_producer
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ServiceMetrics
from services.ingest.app import RECORD_ID_INFO
from services.ingest.police_uk import read_street_csv
from services.ingest.service import IngestService, time_limits
from services.ingest.validation import Item

CHUNK = 2000


async def import_police_uk_file(settings: Settings, path: Path, partner: str,
                                echo: Callable[[str], None] = print) -> dict[str, int]:
    from services.core.crypto.fields import DataKeyStore

    master = MasterKey.from_env_or_file(
        settings.master_key.get_secret_value() if settings.master_key else None,
        settings.resolved_master_key_file())
    producer = make_producer(settings)
    await producer.start()
    svc = IngestService(topics=topics_for(settings), publisher=producer,
                        sealer=DataKeyStore(settings.state_dir / "datakeys", master.kek()),
                        record_id_key=master.derive(RECORD_ID_INFO),
                        metrics=ServiceMetrics("import"), **time_limits(settings))
    totals = {"accepted": 0, "rejected": 0}
    try:
        chunk: list[Item] = []
        for line, rec in read_street_csv(path):
            chunk.append(Item(line, data=rec))
            if len(chunk) >= CHUNK:
                await _flush(svc, partner, chunk, totals, echo)
        await _flush(svc, partner, chunk, totals, echo)
    finally:
        await producer.stop()
    return totals


async def _flush(svc: IngestService, partner: str, chunk: list[Item], totals: dict[str, int],
                 echo: Callable[[str], None]) -> None:
    if not chunk:
        return
    out = await svc.ingest(partner, "police", chunk, "line")
    totals["accepted"] += len(out.accepted)
    totals["rejected"] += len(out.rejected)
    echo(f"  ... {totals['accepted'] + totals['rejected']} rows "
         f"({totals['accepted']} accepted, {totals['rejected']} rejected)")
    chunk.clear()
