"""A bounded soak: the whole hub at a steady offered rate (default 200 records/s through the Kafka
intake) for a fixed time (default 10 minutes), sampling each service's RSS and each consumer
group's lag every ``--every`` seconds. Prints the start (after the warm-up) and end values and
exits non-zero past the stated bounds:

- RSS: every service at most ``--rss-max`` MB at the end, and grown by at most ``--rss-growth`` MB
  from the first post-warm-up sample to the last;
- lag: every group's end lag at most ``--lag-max`` records (i.e. the hub keeps up), and no more
  than ``--lag-growth`` above its start lag.

    python -m bench.soak --minutes 10 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kafka_intake import record_id_key
from bench.run import loadavg, say, start_hub
from bench.workload import group_lag, rss_mb
from demo.cluster import LocalHub
from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from services.core.kafka.broker import EmbeddedBroker, free_port
from services.core.kafka.clients import make_producer
from services.core.kafka.topics import topics_for


def sample(hub: LocalHub) -> dict[str, Any]:
    assert hub.settings is not None
    assert hub.boot is not None
    s, t = hub.settings, topics_for(hub.settings)
    inbound = [t.inbound(p.id) for p in hub.boot.county.partners]
    return {
        "t": time.time(), "load": loadavg(),
        "rss_mb": {svc: round(rss_mb(p.pid), 1) for svc, p in hub.procs.items()},
        "lag": {"ingest-inbound": group_lag(s, "ingest-inbound", inbound),
                "depersonalise": group_lag(s, "depersonalise", t.raw_all),
                "router": group_lag(s, "router", [t.shared])},
    }


async def soak(hub: LocalHub, rate: float, seconds: float, every: float,
               warmup: float) -> list[dict[str, Any]]:
    assert hub.settings is not None
    topics = topics_for(hub.settings)
    stream = Generator(AreaIndex.load(hub.settings.boundaries_dir), seed=200).stream()
    producer = make_producer(hub.settings)
    await producer.start()
    samples: list[dict[str, Any]] = []
    sent = 0
    t0 = time.monotonic()
    next_sample = t0 + warmup
    tick = 0.05
    try:
        while (now := time.monotonic()) - t0 < seconds:
            due = int((now - t0) * rate)
            futs = []
            while sent < due:
                feed, partner, _ward, rec = next(stream)
                futs.append(await producer.send(
                    topics.inbound(partner), json.dumps(rec, separators=(",", ":")).encode(),
                    key=rec["source_id"].encode(), headers=[("feed", feed.encode())]))
                sent += 1
            if futs:
                await asyncio.gather(*futs)
            if now >= next_sample:
                s = await asyncio.to_thread(sample, hub)
                s["sent"] = sent
                samples.append(s)
                say(f"  {now - t0:5.0f}s sent {sent} rss {s['rss_mb']} lag {s['lag']} "
                    f"load {s['load'][0]:.2f}")
                next_sample += every
            await asyncio.sleep(tick)
    finally:
        await producer.stop()
    return samples


def judge(samples: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    first, last = samples[0], samples[-1]
    problems = []
    for svc, end in last["rss_mb"].items():
        start = first["rss_mb"][svc]
        if end > args.rss_max:
            problems.append(f"{svc} RSS {end} MB > {args.rss_max} MB")
        if end - start > args.rss_growth:
            problems.append(f"{svc} RSS grew {end - start:.1f} MB > {args.rss_growth} MB")
    for grp, end in last["lag"].items():
        start = first["lag"][grp]
        if end > args.lag_max:
            problems.append(f"{grp} lag {end} > {args.lag_max}")
        if end - start > args.lag_growth:
            problems.append(f"{grp} lag grew {end - start} > {args.lag_growth}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--every", type=float, default=15.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the start sample")
    ap.add_argument("--rss-max", type=float, default=250.0)
    ap.add_argument("--rss-growth", type=float, default=60.0)
    ap.add_argument("--lag-max", type=int, default=2000, help="records (10 s at 200/s)")
    ap.add_argument("--lag-growth", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or REPO_ROOT / "bench" / "results" / f"soak-{stamp}.json"

    work = Path(tempfile.mkdtemp(prefix="s115soak-"))
    broker = EmbeddedBroker(free_port(), work / "broker.log").start()
    hub = start_hub(broker.bootstrap, work / "herts", REPO_ROOT / "deploy" / "hertfordshire", "sk")
    record_id_key(hub.state_dir)  # fails early if the state is not where the hub put it
    say(f"soak: {args.rate}/s for {args.minutes} min; hub in {work}; load {loadavg()}")
    try:
        samples = asyncio.run(soak(hub, args.rate, args.minutes * 60, args.every, args.warmup))
    finally:
        hub.stop()
        broker.stop()
    problems = judge(samples, args)
    first, last = samples[0], samples[-1]
    print(f"\n{'':<16}{'start':>12}{'end':>12}")
    for svc in last["rss_mb"]:
        print(f"{'RSS ' + svc:<16}{first['rss_mb'][svc]:>10.1f}MB{last['rss_mb'][svc]:>10.1f}MB")
    for grp in last["lag"]:
        print(f"{'lag ' + grp:<16}{first['lag'][grp]:>12}{last['lag'][grp]:>12}")
    print(f"{'load (1 min)':<16}{first['load'][0]:>12.2f}{last['load'][0]:>12.2f}")
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    print(verdict)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args) | {"out": str(out)}, "verdict": verdict,
                               "start": first, "end": last, "samples": samples}, indent=1,
                              default=str) + "\n")
    say(f"written {out}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
