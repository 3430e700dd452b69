"""What the benchmark, the crash tests and the soak share: synthetic load, a publisher that behaves
like a partner (batches over HTTP, retrying whatever was not acknowledged), an expectation of who
should receive what computed from the config files alone, and read-back of what was delivered.

Kept out of the services on purpose: this is the partner's and the auditor's side of the hub.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demo.synthetic import Generator
from services.core.areas import AreaIndex
from services.core.config.county import County
from services.core.config.settings import Settings
from services.core.kafka.clients import kafka_python_common
from services.core.kafka.topics import topics_for
from services.protocols.protocol import load_protocol


@dataclass(frozen=True)
class Item:
    feed: str
    partner: str
    district: str | None  # where the point really falls, by point-in-polygon on the boundaries
    source_id: str
    line: bytes  # the NDJSON line as a partner would send it


def synthetic(n: int, boundaries_dir: Path, seed: int = 115,
              progress: Callable[[int], None] | None = None) -> list[Item]:
    areas = AreaIndex.load(boundaries_dir)
    stream = Generator(areas, seed=seed).stream()
    out: list[Item] = []
    for i in range(n):
        feed, partner, _ward, rec = next(stream)
        w = areas.locate(rec["location"]["lat"], rec["location"]["lon"])
        out.append(Item(feed, partner, w.district_code if w else None, rec["source_id"],
                        json.dumps(rec, separators=(",", ":")).encode()))
        if progress and (i + 1) % 20000 == 0:
            progress(i + 1)
    return out


def batches(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """Consecutive runs of up to ``size`` items of one (partner, feed), in arrival order: what
    each partner's system would have queued while the others were queuing theirs."""
    pending: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for it in items:
        buf = pending[(it.partner, it.feed)]
        buf.append(it)
        if len(buf) >= size:
            yield buf
            pending[(it.partner, it.feed)] = []
    for buf in pending.values():
        if buf:
            yield buf


@dataclass
class PublishStats:
    accepted: dict[str, str] = field(default_factory=dict)  # source_id -> hub_record_id
    sent_at: dict[str, float] = field(default_factory=dict)  # hub_record_id -> first send (epoch)
    rejected: int = 0
    retries: int = 0
    throttled: int = 0
    failures: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    @property
    def count(self) -> int:
        return len(self.accepted)


class HttpPublisher:
    """POSTs NDJSON batches; a batch that fails (connection refused or reset, timeout, 5xx) is sent
    again until the hub acknowledges it, as a partner's integration would. Retrying is safe because
    the hub's record ids are deterministic per (partner, source id)."""

    def __init__(self, base_url: str, api_keys: dict[str, str], *, retry_for: float = 120.0,
                 timeout: float = 30.0) -> None:
        self.base_url = base_url
        self.api_keys = api_keys
        self.retry_for = retry_for
        self.client = httpx.Client(base_url=base_url, timeout=timeout,
                                   limits=httpx.Limits(max_connections=8))
        self.stats = PublishStats()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def send(self, batch: list[Item]) -> None:
        feed, partner = batch[0].feed, batch[0].partner
        body = b"\n".join(it.line for it in batch)
        first = time.time()
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                r = self.client.post(f"/v1/feeds/{feed}/ndjson", content=body,
                                     headers={"X-API-Key": self.api_keys[partner],
                                              "Content-Type": "application/x-ndjson"})
                if r.status_code == 200:
                    break
                problem = f"HTTP {r.status_code}: {r.text[:200]}"
                if r.status_code == 429:
                    # Over the partner's request rate: wait as told, this is not an outage.
                    with self._lock:
                        self.stats.throttled += 1
                    time.sleep(min(float(r.headers.get("Retry-After", "1")), 5.0))
                    continue
                if r.status_code < 500:
                    raise RuntimeError(problem)  # the hub refused it: retrying will not help
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.stats.retries += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"batch not acknowledged after {self.retry_for:.0f}s: {problem}")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        out = r.json()
        with self._lock:
            for a in out["accepted"]:
                rid = a["hub_record_id"]
                self.stats.accepted[a["source_id"]] = rid
                self.stats.sent_at.setdefault(rid, first)
            self.stats.rejected += len(out["rejected"])

    def run(self, items: list[Item], *, batch_size: int, rate: float | None = None,
            workers: int = 1, on_progress: Callable[[int], None] | None = None) -> PublishStats:
        """Publish everything; ``rate`` in records/s (None: as fast as the hub answers)."""
        work = list(batches(items, batch_size))
        self.stats.started = time.time()
        if rate is None:
            self._parallel(work, workers, on_progress)
        else:
            t0 = time.monotonic()
            done = 0
            for batch in work:
                due = t0 + done / rate
                if (lag := due - time.monotonic()) > 0:
                    time.sleep(lag)
                self.send(batch)
                done += len(batch)
                if on_progress:
                    on_progress(done)
        self.stats.finished = time.time()
        return self.stats

    def _parallel(self, work: list[list[Item]], workers: int,
                  on_progress: Callable[[int], None] | None) -> None:
        lock = threading.Lock()
        queue = iter(work)
        errors: list[BaseException] = []
        done = [0]

        def worker() -> None:
            while not errors:
                with lock:
                    batch = next(queue, None)
                if batch is None:
                    return
                try:
                    self.send(batch)
                except BaseException as exc:
                    errors.append(exc)
                    return
                with lock:
                    done[0] += len(batch)
                    n = done[0]
                if on_progress:
                    on_progress(n)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


def expected_groups(county: County, protocols_dir: Path) -> Callable[[str, str | None], set[str]]:
    """(feed, district code) -> the groups entitled, read from the county file and the protocol
    files only: a group gets a record when a protocol for the feed names it as a recipient, the
    group subscribes to that protocol and covers the district. Independent of the router's code,
    so a router bug cannot hide behind an expectation computed by the router."""
    protocols = [load_protocol(p) for p in sorted(protocols_dir.glob("*.yaml"))]
    for g in county.groups:
        # The rule above ignores wards and categories; refuse configs where that would be wrong.
        assert not g.wards, f"group {g.id} names wards: this expectation is too simple for it"
        assert set(g.categories) <= {"*"}, f"group {g.id} filters categories"
    table: dict[tuple[str, str | None], set[str]] = {}

    def lookup(feed: str, district: str | None) -> set[str]:
        key = (feed, district)
        if key not in table:
            table[key] = {
                g.id for g in county.groups for p in protocols
                if feed in p.feeds and g.id in p.recipients and p.id in g.protocols
                and district in g.districts}
        return table[key]

    return lookup


@dataclass
class Delivered:
    ids: dict[str, list[str]]  # group -> hub record ids in topic order, duplicates kept
    stamps: dict[str, float]  # hub record id -> earliest delivery timestamp (epoch seconds)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.ids.values())


def read_deliveries(settings: Settings, groups: Iterable[str],
                    with_stamps: bool = False) -> Delivered:
    """Every delivery on the groups' topics, read from the beginning with the drain rule
    topic_scan uses (tansu under-reports end offsets). Keys are hub record ids."""
    import asyncio

    from services.core.kafka.scan import scan
    from services.core.kafka.topics import topics_for

    t = topics_for(settings)

    async def go() -> Delivered:
        out = Delivered({}, {})
        for g in groups:
            ids: list[str] = []
            async for m in scan(settings, t.deliver(g)):
                rid = m.key.decode()
                ids.append(rid)
                if with_stamps:
                    ts = m.timestamp / 1000.0
                    if ts < out.stamps.get(rid, float("inf")):
                        out.stamps[rid] = ts
            out.ids[g] = ids
        return out

    return asyncio.run(go())


def group_lag(settings: Settings, group_id: str, topics: list[str]) -> int:
    """Records on ``topics`` not yet committed by the hub's consumer group ``group_id`` (the bare
    name, e.g. "router"; the topic prefix is added as the services add it). The end offset is
    the broker's (tansu under-reports it), so 0 here means "committed at or past the reported
    end", to be combined with a content check by the caller."""
    from kafka import KafkaConsumer, TopicPartition

    # A consumer that names the group but never subscribes reads its commits without joining.
    consumer = KafkaConsumer(**kafka_python_common(settings),
                             group_id=topics_for(settings).consumer_group(group_id),
                             enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in topics
               for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(tps)
        lag = 0
        for tp in tps:
            pos = consumer.committed(tp) or 0
            lag += max(0, ends[tp] - pos)
        return lag
    finally:
        consumer.close()


def rss_mb(pid: int) -> float:
    """Resident set size of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]
