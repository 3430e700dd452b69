"""Per-record cost of the depersonalisation engine on one core, per feed: pure, no Kafka.

Measures ``Depersonaliser.process`` (protocol lookup, area lookup from the precise point, every
transform of the Hertfordshire protocol, the risk gate) on synthetic records with the sealed
fields already open, so the figure is the engine's own cost, not AES-GCM or the broker's.

    python bench/engine_cost.py [--records 3000]

Prints a table and writes bench/results/engine_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.synthetic import Generator
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import FeedName
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT, Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.depersonalise.stage import Depersonaliser
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import load_protocol
from services.protocols.signing import (
    generate_officer_key,
    officer_keys_from,
    sign_protocol,
)

FEEDS: tuple[FeedName, ...] = ("police", "fire", "health", "council")


class _Clear:
    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]:
        return {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=3000, help="Records per feed.")
    args = ap.parse_args()
    areas = AreaIndex.load(Settings().boundaries_dir)
    protocols = [load_protocol(p) for p in sorted(
        (REPO_ROOT / "deploy" / "hertfordshire" / "protocols").glob("*.yaml"))]
    keys: dict[str, bytes] = {}
    pems: dict[str, bytes] = {}
    for party in sorted({x for p in protocols for x in p.parties}):
        keys[party], pems[party], _ = generate_officer_key()
    signed = []
    for p in protocols:
        for party in p.parties:
            p = sign_protocol(p, keys[party], party, party)
        signed.append(p)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Depersonaliser(areas=areas, opener=_Clear(),
                               keys=PseudonymKeyring(Path(tmp) / "ring", os.urandom(32)))
        stage.protocols = ProtocolSet(signed, officer_keys=officer_keys_from(pems))
        gen = Generator(areas, seed=1)
        now = datetime.now(UTC)
        rows = []
        for feed in FEEDS:
            raws = []
            for i in range(args.records):
                ward, rec = gen.record(feed, now)
                raws.append(RawRecord(envelope=Envelope(
                    hub_record_id=f"{feed}-{i}", partner=gen.partner_for(feed, ward), feed=feed,
                    source_id=rec["source_id"], received_at=now), fields=rec))
            stage.process(raws[0], now=now)  # warm caches (signature checks, keyring)
            t0 = time.process_time()
            released = 0
            for raw in raws:
                released += len(stage.process(raw, now=now).shared)
            cpu = time.process_time() - t0
            rows.append({"feed": feed, "records": len(raws), "released": released,
                         "cpu_seconds": round(cpu, 3),
                         "records_per_second": round(len(raws) / cpu),
                         "microseconds_per_record": round(cpu / len(raws) * 1e6, 1)})
    print(f"{'feed':<9}{'records':>9}{'records/s':>12}{'us/record':>12}")
    for r in rows:
        print(f"{r['feed']:<9}{r['records']:>9}{r['records_per_second']:>12}"
              f"{r['microseconds_per_record']:>12}")
    out = Path(__file__).parent / "results" / "engine_cost.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpu_count": os.cpu_count(), "clock": "process CPU time, one thread",
        # The bench box is shared: CPU time still swells when other work contends for the cores.
        "load_average_1m": round(os.getloadavg()[0], 2), "feeds": rows,
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
