"""faust's second trial on Apache Kafka (issue 13): hot-spot style window counts as a faust table.

One local Apache Kafka node (services/core/kafka/local.py). ``fx.src`` (3 partitions) holds N
events keyed by ward, all inside one hour, so the right answer per (ward, window) is the number of
events for the ward. A faust worker counts them in ``Table(...).tumbling(3600)``.

- speed: events/s from the worker's first counted event to its last (no kill);
- kill -9: a fresh app id, the worker killed part-way, restarted, run to the end; then the
  changelog is read back (read_committed, the last value per window key) and compared with a
  recount of the source.

Run: ``python -m bench.faust_trial [N]``; needs ``faust-streaming`` (removed from the project's
dependencies after this trial: ``pip install faust-streaming==0.15.3`` to repeat it). Prints one
JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

WORKER = r'''
import os, sys, time, faust
app = faust.App(os.environ["FX_APP"], broker="kafka://" + os.environ["FX_BOOT"],
                store="memory://", topic_partitions=3, web_enabled=False,
                processing_guarantee=os.environ.get("FX_GUARANTEE", "exactly_once"),
                broker_commit_every=1000, broker_commit_interval=1.0)
src = app.topic("fx.src", key_type=str, value_type=bytes, partitions=3)
cnt = app.Table("cnt", default=int, partitions=3).tumbling(3600.0, expires=7 * 86400)
progress = open(os.environ["FX_PROGRESS"], "a", buffering=1)
seen = [0, None]

@app.agent(src)
async def count(stream):
    async for ward in stream.events():
        cnt[ward.key] += 1
        seen[0] += 1
        if seen[1] is None:
            seen[1] = time.monotonic()
        if seen[0] % 1000 == 0:
            progress.write(f"{seen[0]} {time.monotonic() - seen[1]:.3f}\n")

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "-l", "warn"]
    app.main()
'''


def produce(boot: str, n: int) -> Counter[str]:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=boot)
    admin.create_topics([NewTopic("fx.src", 3, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=boot, linger_ms=20, acks="all")
    truth: Counter[str] = Counter()
    ts = (int(time.time()) // 3600) * 3600 * 1000 + 60_000  # one hour window, now
    for i in range(n):
        ward = f"w{(i * 7919) % 200:03d}"
        truth[ward] += 1
        producer.send("fx.src", key=ward.encode(), value=b"{}", timestamp_ms=ts + i % 1000)
    producer.flush()
    producer.close()
    return truth


def progress_of(path: Path) -> tuple[int, float]:
    lines = path.read_text().split() if path.exists() else []
    return (int(lines[-2]), float(lines[-1])) if len(lines) >= 2 else (0, 0.0)


def run_worker(boot: str, app_id: str, progress: Path, work: Path) -> subprocess.Popen[bytes]:
    script = work / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "FX_APP": app_id, "FX_BOOT": boot, "FX_PROGRESS": str(progress)}
    return subprocess.Popen([sys.executable, str(script)], env=env, cwd=work,  # noqa: S603
                            stdout=open(work / f"{app_id}.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_progress(path: Path, target: int, timeout: float) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    last = (0, 0.0)
    while time.monotonic() < deadline:
        last = progress_of(path)
        if last[0] >= target:
            return last
        time.sleep(0.2)
    return last


def changelog_counts(boot: str, app_id: str) -> Counter[str]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(f"{app_id}-cnt-changelog", bootstrap_servers=boot,
                             auto_offset_reset="earliest", isolation_level="read_committed",
                             consumer_timeout_ms=5000, enable_auto_commit=False)
    last: dict[bytes, int] = {}
    for m in consumer:
        if m.value is not None:
            last[m.key] = int(json.loads(m.value))
    consumer.close()
    out: Counter[str] = Counter()
    for key, value in last.items():
        ward = json.loads(key)[0]
        out[ward] += value
    return out


def main() -> None:
    from services.core.kafka.local import LocalKafka

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    work = Path(tempfile.mkdtemp(prefix="faust-trial-"))
    kafka = LocalKafka(work / "kafka").start()
    boot = kafka.bootstrap()
    result: dict[str, object] = {"events": n, "kafka": kafka.version}
    try:
        truth = produce(boot, n)
        # speed
        prog = work / "speed.progress"
        w = run_worker(boot, "fxspeed", prog, work)
        done, secs = wait_progress(prog, n, 600)
        os.killpg(w.pid, signal.SIGKILL)
        w.wait()
        result["speed"] = {"counted": done, "seconds": secs,
                           "events_per_s": round(done / secs, 1) if secs else None}
        # kill -9 and restart
        prog = work / "kill.progress"
        w = run_worker(boot, "fxkill", prog, work)
        at, _ = wait_progress(prog, n * 4 // 10, 600)
        os.killpg(w.pid, signal.SIGKILL)
        w.wait()
        prog2 = work / "kill2.progress"
        w = run_worker(boot, "fxkill", prog2, work)
        # the restarted worker counts what was not committed; wait until the changelog agrees
        # or stops moving
        deadline = time.monotonic() + 300
        got: Counter[str] = Counter()
        while time.monotonic() < deadline:
            time.sleep(5)
            got = changelog_counts(boot, "fxkill")
            if sum(got.values()) >= n:
                time.sleep(5)
                got = changelog_counts(boot, "fxkill")
                break
        os.killpg(w.pid, signal.SIGTERM)
        w.wait(30)
        diff = {k: got[k] - truth[k] for k in truth if got[k] != truth[k]}
        result["kill9"] = {"killed_after": at, "recount_total": sum(truth.values()),
                           "table_total": sum(got.values()), "windows_wrong": len(diff),
                           "example_diffs": dict(list(diff.items())[:5])}
    finally:
        kafka.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
