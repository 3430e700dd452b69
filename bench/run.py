"""The benchmark: the whole hub (ingest, depersonalise, router as separate processes) on the
embedded broker, fed through the Kafka intake, against a raw aiokafka consume -> produce loop on
the same records. A script, not a test: figures on a shared 2-core machine move with its load, so
the load average is recorded next to every figure.

    python -m bench.run                       # 200,000 synthetic + the police.uk month
    python -m bench.run --records 20000 --fixed-seconds 10 --quick   # a smoke run

Phases, in order, on one hub:
1. fixed offered rate 200/s, then 2,000/s (latency publish -> delivery, p50/p99);
2. full speed: the rest of the synthetic records (throughput, latency under backlog, RSS);
3. raw passthrough: aiokafka consume -> produce of the raw records, doing no work;
4. the real police.uk month on a second hub with the Essex config.

Latency is from the moment the publisher handed a record to its producer to the timestamp of the
record's first delivery message (set by the router's producer when it sends). Throughput counts
input records whose every entitled delivery has been written, over the time from the first send
to the last delivery.

Over 400 lines because the four phases share one hub, its publisher and its figures, and read
best in the order they run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.hops import hop_latencies
from bench.kafka_intake import publish, record_id_key
from bench.workload import (
    Item,
    PublishStats,
    expected_groups,
    group_lag,
    percentile,
    read_deliveries,
    rss_mb,
    synthetic,
)
from demo.cluster import SERVICES, LocalHub
from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.broker import EmbeddedBroker, free_port
from services.core.kafka.clients import (
    ensure_topics,
    kafka_python_common,
    make_consumer,
    make_producer,
)
from services.core.kafka.topics import TopicSpec, topics_for
from services.ingest.police_uk import read_street_csv

POLICE_UK = REPO_ROOT / "deploy" / "data" / "police-uk" / "2018-01-essex-street.csv"
CLK = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Sampler:
    """RSS and CPU of each service once a second, in a thread."""

    def __init__(self, hub: LocalHub) -> None:
        self.hub = hub
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            row = {}
            for svc, proc in self.hub.procs.items():
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        row[svc] = rss_mb(proc.pid)
            self.samples.append((time.time(), row))

    def max_rss(self, since: float = 0.0) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for t, row in self.samples:
            if t >= since:
                for svc, v in row.items():
                    out[svc] = max(out[svc], v)
        return {k: round(v, 1) for k, v in out.items()}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


#: Processes measured besides the services (the embedded broker: its CPU bounds the hub too).
EXTRA_PIDS: dict[str, int] = {}


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core (/proc schedstat):
    on a shared machine this, not the code, is where much of the latency goes."""
    total = 0
    for f in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(f.read_text().split()[1])
    return total / 1e9


def waits_of(hub: LocalHub) -> dict[str, float]:
    pids = {svc: p.pid for svc, p in hub.procs.items() if p.poll() is None} | EXTRA_PIDS
    return {name: runqueue_wait_seconds(pid) for name, pid in pids.items()}


def cpu_of(hub: LocalHub) -> dict[str, float]:
    out = {svc: cpu_seconds(p.pid) for svc, p in hub.procs.items() if p.poll() is None}
    for name, pid in EXTRA_PIDS.items():
        with contextlib.suppress(OSError):
            out[name] = cpu_seconds(pid)
    return out


def wait_drained(hub: LocalHub, timeout: float, with_inbound: bool = True) -> float:
    """Until ingest's inbound group, depersonalise and router have committed past the end of their
    inputs (upstream first). Returns the seconds waited."""
    assert hub.settings is not None
    assert hub.boot is not None
    s, t = hub.settings, topics_for(hub.settings)
    inbound = [t.inbound(p.id) for p in hub.boot.county.partners]
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout:
        lags = (group_lag(s, "ingest-inbound", inbound) if with_inbound else 0,
                group_lag(s, "depersonalise", t.raw_all), group_lag(s, "router", [t.shared]))
        if lags == (0, 0, 0):
            return time.monotonic() - t0
        if (msg := f"lag inbound/depersonalise/router {lags}") != last:
            say("  " + msg)
            last = msg
        time.sleep(1.0)
    raise TimeoutError(f"not drained after {timeout:.0f}s")


def committed_of(settings: Settings, group_id: str, topic: str) -> int | None:
    """The group's committed offset on partition 0 of ``topic`` (None: nothing committed)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_common(settings),
                             group_id=topics_for(settings).consumer_group(group_id),
                             enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


def warm_up(hub: LocalHub, items: list[Item], key: bytes, timeout: float = 120.0) -> None:
    """Publish a few records and wait until every stage, the audit chainer included, has
    handled them. A hub is ready before the chainer has joined its consumer group (tansu holds a
    first join for the rebalance timeout); measured from "ready", the first phase's p99 was the
    chainer catching up on its first seconds of facts, 1 s of the router's loop, not the hub's
    steady state (issue 12)."""
    assert hub.settings is not None
    s = hub.settings
    asyncio.run(publish(s, items, key, rate=None))
    facts = topics_for(s).audit_facts
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if committed_of(s, "audit-chainer", facts) is not None:
            wait_drained(hub, timeout)
            if group_lag(s, "audit-chainer", [facts]) == 0:
                say(f"  warmed up in {time.monotonic() - t0:.1f}s")
                return
        time.sleep(0.5)
    raise TimeoutError(f"the hub did not warm up in {timeout:.0f}s")


def run_phase(name: str, hub: LocalHub, sampler: Sampler, items: list[Item], key: bytes,
              rate: float | None, expect: Callable[[str, str | None], set[str]],
              drain_timeout: float) -> dict[str, Any]:
    assert hub.settings is not None
    assert hub.boot is not None
    if not items:
        raise SystemExit(f"phase {name} has no records: raise --records or lower --fixed-seconds")
    say(f"phase {name}: {len(items)} records at {rate or 'full speed'}"
        f"{'/s' if rate else ''}; load {loadavg()}")
    load0, cpu0, wait0, t0 = loadavg(), cpu_of(hub), waits_of(hub), time.time()
    step = max(1, len(items) // 10)

    def progress(n: int) -> None:
        if n % step < (1000 if rate is None else max(1, int(rate / 50))):
            say(f"  published {n}/{len(items)}")

    stats: PublishStats = asyncio.run(publish(hub.settings, items, key, rate=rate,
                                              on_progress=progress))
    say(f"  published in {stats.finished - stats.started:.1f}s; waiting for the pipeline")
    wait_drained(hub, drain_timeout)
    cpu1, wait1, load1, t1 = cpu_of(hub), waits_of(hub), loadavg(), time.time()
    got = read_deliveries(hub.settings, [g.id for g in hub.boot.county.groups], with_stamps=True)
    want = {stats.accepted[it.source_id] for it in items if expect(it.feed, it.district)}
    missing = want - set(got.stamps)
    lat = [(got.stamps[rid] - stats.sent_at[rid]) * 1000 for rid in want if rid in got.stamps]
    last = max((got.stamps[r] for r in want if r in got.stamps), default=stats.started)
    elapsed = last - stats.started
    out = {
        "records": len(items), "offered_rate": rate,
        "intake_rate": round(len(items) / max(stats.finished - stats.started, 1e-9), 1),
        "delivered_records": len(want) - len(missing), "missing_records": len(missing),
        "end_to_end_records_per_s": round(len(want) / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": {"p50": round(percentile(lat, 50), 1), "p90": round(percentile(lat, 90), 1),
                       "p99": round(percentile(lat, 99), 1), "max": round(max(lat), 1)}
        if lat else None,
        "hops_ms": hop_latencies(hub.settings, stats.sent_at,
                                 {r: got.stamps[r] for r in want if r in got.stamps})
        if rate is not None else None,
        "cpu_seconds_per_1k_records": {
            svc: round((cpu1[svc] - cpu0.get(svc, 0.0)) / len(items) * 1000, 3) for svc in cpu1},
        # Share of one core each process used over the phase (publish to drained): a stage far
        # below 1 while the hub lags is waiting on something, not computing.
        "cpu_busy": {svc: round((cpu1[svc] - cpu0.get(svc, 0.0)) / max(t1 - t0, 1e-9), 2)
                     for svc in cpu1},
        # Share of the phase each process spent ready to run but waiting for a core.
        "runqueue_wait": {svc: round((wait1[svc] - wait0.get(svc, 0.0)) / max(t1 - t0, 1e-9), 2)
                          for svc in wait1},
        "rss_mb_max": sampler.max_rss(since=t0),
        "load_average_start": load0, "load_average_end": load1,
    }
    say(f"  {name}: {json.dumps(out)}")
    return out


async def passthrough(settings: Settings, total: int) -> dict[str, Any]:
    """aiokafka consume -> produce of the raw topics' records, no work: the broker and client
    ceiling the hub is compared with. Same client settings as the services."""
    t = topics_for(settings)
    out_topic = f"{settings.topic_prefix}.bench.passthrough"
    ensure_topics(settings, [TopicSpec(out_topic, settings.topic_partitions, {})])
    consumer = make_consumer(settings, *t.raw_all, group_id=f"bench-passthrough-{time.time_ns()}")
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    n, first = 0, 0.0
    try:
        while n < total:
            batch = await consumer.getmany(timeout_ms=1000,
                                           max_records=settings.batch_max_records)
            if not batch:
                continue
            first = first or time.time()
            futs = []
            for msgs in batch.values():
                for m in msgs:
                    futs.append(await producer.send(out_topic, m.value, key=m.key,
                                                    headers=list(m.headers)))
            await asyncio.gather(*futs)
            await consumer.commit()
            n += sum(len(v) for v in batch.values())
        elapsed = time.time() - first
    finally:
        await consumer.stop()
        await producer.stop()
    return {"records": n, "seconds": round(elapsed, 2), "records_per_s": round(n / elapsed, 1)}


def police_uk_items(path: Path) -> list[Item]:
    out = []
    for _line, rec in read_street_csv(path):
        out.append(Item("police", "essex-police", rec["district_hint"], rec["source_id"],
                        json.dumps(rec, separators=(",", ":")).encode()))
    return out


def start_hub(broker: str, state: Path, config: Path, prefix: str) -> LocalHub:
    hub = LocalHub(state, config, bootstrap_servers=broker, idempotent_producer=False,
                   log_dir=state / "logs")
    hub.start(topic_prefix=prefix)
    return hub


def spy(hub: LocalHub, seconds: int, out_dir: Path) -> list[subprocess.Popen[bytes]]:
    exe = Path(sys.executable).with_name("py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([str(exe), "record", "-r", "50", "-d", str(seconds),  # noqa: S603
                              "-f", "raw", "-o", str(out_dir / f"{svc}.txt"),
                              "-p", str(hub.procs[svc].pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for svc in SERVICES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000, help="synthetic records in all")
    ap.add_argument("--fixed-seconds", type=float, default=30.0,
                    help="seconds of each fixed-rate phase")
    ap.add_argument("--rates", default="200,2000", help="fixed offered rates, records/s")
    ap.add_argument("--police-uk", type=Path, default=POLICE_UK)
    ap.add_argument("--skip-police-uk", action="store_true")
    ap.add_argument("--profile", type=Path, default=None,
                    help="py-spy the services during the full-speed phase into this directory")
    ap.add_argument("--out", type=Path, default=None, help="JSON results file "
                    "(default bench/results/bench-<time>.json)")
    ap.add_argument("--drain-timeout", type=float, default=1800.0)
    ap.add_argument("--label", default="", help="a note stored with the results")
    args = ap.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = args.out or REPO_ROOT / "bench" / "results" / f"bench-{stamp}.json"
    results: dict[str, Any] = {
        "label": args.label, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "intake": "kafka (s115.inbound.<partner>)", "load_average_start": loadavg(),
        "phases": {},
    }
    say(f"generating {args.records} synthetic records")
    items = synthetic(args.records, Settings().boundaries_dir, seed=115,
                      progress=lambda n: say(f"  generated {n}"))
    work = Path(tempfile.mkdtemp(prefix="s115bench-"))
    broker = EmbeddedBroker(free_port(), work / "broker.log").start()
    say(f"embedded broker on {broker.bootstrap}; work dir {work}")
    assert broker.process is not None
    EXTRA_PIDS["broker"] = broker.process.pid
    hub = None
    try:
        hub = start_hub(broker.bootstrap, work / "herts", REPO_ROOT / "deploy" / "hertfordshire",
                        "bh")
        assert hub.boot is not None
        assert hub.settings is not None
        sampler = Sampler(hub)
        key = record_id_key(hub.state_dir)
        expect = expected_groups(hub.boot.county, hub.config_dir / "protocols")
        # Records of their own (another seed), so the phases' records and figures are unchanged.
        warm_up(hub, synthetic(100, Settings().boundaries_dir, seed=7), key)
        pos = 0
        for rate in rates:
            n = int(rate * args.fixed_seconds)
            results["phases"][f"rate_{int(rate)}"] = run_phase(
                f"rate {int(rate)}/s", hub, sampler, items[pos:pos + n], key, rate, expect,
                args.drain_timeout)
            pos += n
        rest = items[pos:]
        spies = spy(hub, 60, args.profile) if args.profile else []
        full = run_phase("full speed", hub, sampler, rest, key, None, expect, args.drain_timeout)
        for p in spies:
            p.wait()
        results["phases"]["full_speed"] = full
        results["rss_mb_max"] = sampler.max_rss()
        sampler.stop()
        hub.stop()
        hub = None

        say(f"raw passthrough of {args.records} raw records (hub stopped); load {loadavg()}")
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap, topic_prefix="bh",
                            kafka_idempotent_producer=False)
        load0 = loadavg()
        raw = asyncio.run(passthrough(settings, args.records))
        raw["load_average_start"], raw["load_average_end"] = load0, loadavg()
        results["raw_passthrough"] = raw
        say(f"  raw passthrough: {raw}")
        hub_rate = full["end_to_end_records_per_s"] or 0.0
        results["hub_raw_ratio"] = round(hub_rate / raw["records_per_s"], 3)

        if not args.skip_police_uk:
            hub = start_hub(broker.bootstrap, work / "essex", REPO_ROOT / "deploy" / "essex", "bx")
            assert hub.boot is not None
            sampler = Sampler(hub)
            pitems = police_uk_items(args.police_uk)
            grp = hub.boot.county.groups[0]
            names = {n.casefold() for n in grp.district_names}

            def essex(feed: str, district: str | None) -> set[str]:
                return {grp.id} if district and district.casefold() in names else set()

            results["phases"]["police_uk"] = run_phase(
                "police.uk month", hub, sampler, pitems, record_id_key(hub.state_dir), None,
                essex, args.drain_timeout)
            sampler.stop()
    finally:
        if hub is not None:
            hub.stop()
        broker.stop()
    results["load_average_end"] = loadavg()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results)
    say(f"results written to {out_path}")
    return 0


def print_table(r: dict[str, Any]) -> None:
    print()
    print(f"{'phase':<14}{'records':>9}{'offered/s':>10}{'e2e rec/s':>10}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'lost':>6}  rss MB (ingest/dep/router)  load")
    for name, p in r["phases"].items():
        lat = p["latency_ms"] or {}
        rss = p["rss_mb_max"]
        print(f"{name:<14}{p['records']:>9}{p['offered_rate'] or 'max'!s:>10}"
              f"{p['end_to_end_records_per_s']!s:>10}{lat.get('p50', '-')!s:>9}"
              f"{lat.get('p99', '-')!s:>9}{p['missing_records']:>6}  "
              f"{rss.get('ingest', 0):.0f}/{rss.get('depersonalise', 0):.0f}/"
              f"{rss.get('router', 0):.0f}  {p['load_average_start'][0]:.2f}")
    if "raw_passthrough" in r:
        print(f"raw passthrough: {r['raw_passthrough']['records_per_s']} rec/s; "
              f"hub/raw ratio {r.get('hub_raw_ratio')}")


if __name__ == "__main__":
    sys.exit(main())
