"""HTTP ingest rate for batches: ``python -m bench.ingest_http``.

Starts an embedded broker (or uses ``--bootstrap``), provisions the Hertfordshire config, serves
ingest with uvicorn in this process and posts NDJSON batches of synthetic police records (with
personal fields, so sealing is measured) from a client in another thread. Prints records/s from
the first request to the last acknowledgement: every record counted has been acked by the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from demo.bootstrap import bootstrap
from services.core.config.publish import publish
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.broker import EmbeddedBroker, free_port
from services.core.kafka.clients import ensure_topics
from services.core.kafka.topics import topic_specs
from services.ingest.app import make_app


def records(n: int, start: int) -> list[dict[str, object]]:
    return [{"source_id": f"bench-{i}", "category": "burglary",
             "occurred_at": "2024-05-01T21:30:00Z",
             "location": {"lat": 51.75 + (i % 100) / 1000, "lon": -0.34},
             "victim_name": f"Person {i}", "address": f"{i} Bench Street",
             "summary": "Entry forced at the rear."} for i in range(start, start + n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1_000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--bootstrap", default=None, help="An existing broker (default: embedded).")
    args = ap.parse_args()
    broker = None if args.bootstrap else EmbeddedBroker(free_port()).start()
    servers = args.bootstrap or (broker.bootstrap if broker else "")
    state = Path(tempfile.mkdtemp(prefix="s115bench"))
    config = REPO_ROOT / "deploy" / "hertfordshire"
    settings = Settings(kafka_bootstrap_servers=servers, state_dir=state, config_dir=config,
                        topic_prefix=f"bench{int(time.time())}",
                        kafka_idempotent_producer=broker is None, ingest_rate_per_partner=0,
                        ingest_inbound=False, ingest_dedupe_window=0)
    boot = bootstrap(state, config)
    ensure_topics(settings, topic_specs(settings, [], [p.id for p in boot.county.partners]))
    publish(settings, boot.messages)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(make_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    bodies = ["\n".join(json.dumps(r) for r in records(args.batch, i))
              for i in range(0, args.records, args.batch)]
    headers = {"X-API-Key": boot.api_keys["herts-police"]}

    async def post_all() -> int:
        sem = asyncio.Semaphore(args.concurrency)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            async def one(body: str) -> int:
                async with sem:
                    r = await c.post("/v1/feeds/police/ndjson", content=body, headers=headers)
                    r.raise_for_status()
                    return int(r.json()["counts"]["accepted"])
            return sum(await asyncio.gather(*(one(b) for b in bodies)))

    try:
        t0 = time.perf_counter()
        accepted = asyncio.run(post_all())
        elapsed = time.perf_counter() - t0
        print(f"{accepted} records in {len(bodies)} NDJSON batches of {args.batch} "
              f"(concurrency {args.concurrency}): {elapsed:.2f}s, {accepted / elapsed:,.0f} "
              "records/s acknowledged")
    finally:
        server.should_exit = True
        thread.join(15)
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
