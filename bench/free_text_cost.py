"""Worst-case time per record on the text path, for the issue's adversarial 4,000-character
records: through the whole depersonalise stage (``Depersonaliser.process`` with the Hertfordshire
protocols and their vocabulary and tags variants, see ``free_text_leaks``) and through the
vocabulary release alone.

    python bench/free_text_cost.py [--repeat 20]

Writes bench/results/free_text_cost.json. The worst call of
``--repeat`` is reported (process CPU time, as ``engine_cost``; wall time beside it, inflated
by whatever else shares the machine).
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

from bench.free_text_leaks import corpus, protocols, stage_for
from schemas.envelope import Envelope, RawRecord
from services.core.config.settings import REPO_ROOT
from services.protocols.transforms import get_transform
from services.protocols.transforms.free_text import lists_for
from services.protocols.transforms.free_text_record import record_words
from services.protocols.transforms.free_text_vocabulary import Release

ADVERSARIAL = {
    "dots": "." * 4000,
    "separators": ". - , ; / " * 400,
    "minus_one": "-1" * 2000,
    "a_at_a": "a" * 3998 + "@a",
    "one_slash": "1/1/" * 1000,
    "deep_punctuation": "(" * 2000 + ")" * 2000,
    "dot_tokens": "a." * 2000,
    "zero_width": "Jo\u200b" * 1333,
    "combining": "e" + "\u0301" * 3999,
    "words": "forced the rear door with a screwdriver " * 100,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    protos = protocols(REPO_ROOT / "deploy" / "hertfordshire" / "protocols")
    records, partners = corpus(3, 1)
    base = records[0].fields  # a police record placed in a Hertfordshire ward
    now = datetime.now(UTC)
    lists = lists_for(["incident-en@1", "towns-east@1"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        stage = stage_for(protos, Path(tmp))
        # Warm the caches a service warms once (signature checks, keyring, lists) before timing.
        stage.process(RawRecord(envelope=Envelope(
            hub_record_id="warm", partner=partners[0], feed="police", source_id="warm",
            received_at=now), fields=base), now=now)
        for name, text in ADVERSARIAL.items():
            fields = {**base, "summary": text[:4000], "victim_name": text[:200],
                      "suspect_name": text[:200], "address": text[:300]}
            raw = RawRecord(envelope=Envelope(
                hub_record_id=f"adv-{name}", partner=partners[0], feed="police",
                source_id="adv", received_at=now), fields=fields)
            stage_ms = []
            stage_wall = []
            release_ms = []
            for _ in range(args.repeat):
                t0, w0 = time.process_time(), time.perf_counter()
                result = stage.process(raw, now=now)
                stage_ms.append((time.process_time() - t0) * 1000)
                stage_wall.append((time.perf_counter() - w0) * 1000)
                assert len(result.shared) == 3, result.blocked
                t0 = time.process_time()
                own = record_words(fields, ("victim_name", "suspect_name", "address"),
                                   skip={"summary"}, places=lists.places)
                Release(lists, own).run(fields["summary"])
                release_ms.append((time.process_time() - t0) * 1000)
            rows.append({"input": name, "chars": len(fields["summary"]),
                         "stage_worst_ms": round(max(stage_ms), 2),
                         "stage_median_ms": round(sorted(stage_ms)[len(stage_ms) // 2], 2),
                         "stage_worst_wall_ms": round(max(stage_wall), 2),
                         "vocabulary_release_worst_ms": round(max(release_ms), 2)})
    get_transform("free_text")  # registry loaded: nothing else to warm
    print(f"{'input':<18}{'chars':>7}{'stage worst ms':>16}{'median':>9}{'release worst':>15}")
    for r in rows:
        print(f"{r['input']:<18}{r['chars']:>7}{r['stage_worst_ms']:>16}"
              f"{r['stage_median_ms']:>9}{r['vocabulary_release_worst_ms']:>15}")
    worst = max(r["stage_worst_ms"] for r in rows)
    print(f"worst record through the stage (3 protocols: shipped, vocabulary, tags): {worst} ms")
    out = Path(__file__).parent / "results" / "free_text_cost.json"
    out.write_text(json.dumps({
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2), "repeat": args.repeat,
        "clock": "process CPU time per call (one thread), worst of repeat; wall time also "
                 "given: the 2-core machine is shared, so wall time includes waiting for a core",
        "stage_protocols_per_record": 3, "worst_stage_ms": worst, "inputs": rows,
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
