"""Glue for the hot-spot stage: alerts out on ``s115.hotspots.<group>`` (with an audit fact each),
state on a compacted topic. It does not read Kafka itself: the router's one stage on the stage
runner reads every partition of ``s115.shared`` once, parses each record once and hands it to
both routing and ``observe`` here (issue 12). The interface to the window logic
(``hotspot_stage.HotspotStage``) is ``observe``/``to_state``/``restore``/``offsets``.

Why not faust tables and windows: on the embedded broker faust's table recovery reads each
changelog partition only up to the end offset the broker reports, which tansu under-reports
(see services/core/kafka/scan.py); a restarted worker restored a tumbling-window count of 4
where 6 had been written (notes/issue-5.md has the run). The stage therefore keeps its own
state: a snapshot of the detectors *and* of the shared offsets they have counted, written as
one unit, read back with ``topic_scan.drain``.

Why the offsets live in the snapshot: Gi* and Benjamini-Hochberg need the whole county at once,
so one reader takes every partition; the router's group offsets say what was routed, the
snapshot's what was counted, and the shared read starts at the lower of the two. Run the hot-spot
stage in one router replica (the router already assumes one: see audit_sink.py).

Snapshot layout on the state topic (one partition, compacted): ``chunk/<slot>/<i>`` hold the
zlib-compressed JSON of the state in pieces of at most 512 KiB; ``head`` names the slot, chunk
count and SHA-256 and is written after its chunks are acknowledged. Slots alternate, so the
slot ``head`` points at is never being overwritten: a crash while writing leaves the previous
snapshot whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.settings import Settings
from services.core.kafka.scan import scan
from services.core.kafka.stage_runner import Out
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ServiceMetrics
from services.router.hotspot_stage import HotspotStage, to_hotspot_alert
from services.router.hotspots.adjacency import build_adjacency, load_ward_features
from services.router.hotspots.detector import Alert, DetectorConfig
from services.router.ledger import DeliveryLedger
from services.router.routing_view import RoutingView, RoutingViews

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
#: While records flow, a snapshot is taken at most this often and at most a twentieth of the
#: time (an interval of at least 20 x the last snapshot's duration): it is pure CPU on the
#: router's event loop (state to JSON to zlib: ~0.1 s at 200 records/s under load, issue 12)
#: and every delivery waits behind it. A batch that raised alerts is still followed by one, and
#: so is a pause in the stream (no record for SNAPSHOT_IDLE_S), when it delays nobody.
SNAPSHOT_MIN_INTERVAL_S = 5.0
SNAPSHOT_MAX_SHARE = 0.05
SNAPSHOT_IDLE_S = 0.5


def encode_snapshot(state: dict[str, Any], slot: int) -> list[tuple[bytes, bytes]]:
    """(key, value) messages for one snapshot; ``head`` last."""
    blob = zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)
    chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    out = [(f"chunk/{slot}/{i}".encode(), c) for i, c in enumerate(chunks)]
    head = {"slot": slot, "chunks": len(chunks), "sha256": hashlib.sha256(blob).hexdigest(),
            "bytes": len(blob)}
    out.append((b"head", json.dumps(head).encode()))
    return out


def decode_snapshot(latest: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The state from the latest value of each key, or None when there is no whole snapshot."""
    raw = latest.get(b"head")
    if raw is None:
        return None
    head = json.loads(raw)
    parts = [latest.get(f"chunk/{head['slot']}/{i}".encode()) for i in range(head["chunks"])]
    if any(p is None for p in parts):
        return None
    blob = b"".join(p for p in parts if p is not None)
    if hashlib.sha256(blob).hexdigest() != head["sha256"]:
        return None
    return dict(json.loads(zlib.decompress(blob)))


def _event_key(item: Any) -> str:
    """Sort key of a decoded shared item: its raw event-time text (ISO 8601 sorts as time does);
    records without one sort first, which is harmless since they are not windowed."""
    fields = item.value.fields
    for name in ("occurred_at", "reported_at", "assault_at"):
        if isinstance(fields.get(name), str):
            return str(fields[name])
    return ""


def merge_by_event_time(batches: Iterable[list[Any]]) -> Iterator[Any]:
    """One fetch's items, partitions interleaved by event time. Each partition keeps its own
    order (heapq.merge only ever takes an input's head), so offsets still rise per partition;
    interleaving lowers the number of events that reach a window after it closed."""
    return heapq.merge(*batches, key=_event_key)


class HotspotRunner:
    def __init__(self, settings: Settings, metrics: ServiceMetrics, views: RoutingViews,
                 config: DetectorConfig | None = None) -> None:
        self.settings = settings
        self.topics = topics_for(settings)
        # The routing view only, never the router: subscriptions, live protocols and
        # suppression thresholds arrive with each batch's view (routing_view.py).
        self.views = views
        self.config = config or DetectorConfig()
        self.stage: HotspotStage | None = None
        self.ward_names: dict[str, str] = {}
        self.sent = DeliveryLedger()
        self._lateness: Mapping[str, timedelta] = {}
        self.ready = asyncio.Event()
        self._slot = 0
        self._dirty = False
        self._last = time.monotonic()
        self._interval = SNAPSHOT_MIN_INTERVAL_S
        self._gauges_at = 0.0
        self._alerted = False
        self._seen_at = 0.0  # monotonic time of the last record observed
        m = metrics
        self.m_records = m.counter("hotspot_records_total",
                                   "Shared records seen by the hot-spot stage, by outcome.",
                                   ["outcome"])
        self.m_alerts = m.counter("hotspot_alerts_total", "Hot-spot alerts sent to groups.",
                                  ["group", "window"])
        self.m_alert_dupes = m.counter("hotspot_alerts_duplicate_total",
                                       "Re-raised alerts (after a restart) not sent again.")
        self.m_state = m.gauge("hotspot_state_keys", "Keys held by the hot-spot detectors.")
        self.m_late = m.gauge("hotspot_late_events", "Records counted in no window: stamped "
                                                     "too far ahead or older than the history.")
        self.m_snap_bytes = m.gauge("hotspot_snapshot_bytes", "Compressed size of the last "
                                                              "state snapshot.")
        self.m_snap = m.histogram("hotspot_snapshot_duration_seconds",
                                  "Time to encode and write one state snapshot.")
        # Label values are feed names (schemas.feeds.FeedName), a small fixed set.
        self.m_feed_lag = m.gauge("hotspot_feed_lag_seconds", "Wall clock minus the latest "
                                  "event time of each partner feed.", ["feed"])
        self.m_feed_silent = m.gauge("hotspot_feed_silent", "1 when a feed has sent nothing for "
                                     "longer than allowed (its counts may be incomplete).",
                                     ["feed"])
        self.m_feed_late = m.gauge("hotspot_feed_late_records", "Records counted into past "
                                   "weeks because they came after allowed lateness.", ["feed"])

    # -- study area -----------------------------------------------------------------------------

    def _build_stage(self) -> HotspotStage:
        """Study area: the wards of the config's county in the boundaries (adjacency from them);
        a county the boundaries do not hold gets no study area and Gi* is left out."""
        areas = AreaIndex.load(self.settings.boundaries_dir)
        name = self.views.current.county.casefold()
        features = [f for f in load_ward_features(self.settings.boundaries_dir / "wards.geojson")
                    if areas.district_county.get(f.lad_code, "").casefold() == name]
        self.ward_names = {w.code: w.name for w in areas.wards.values()}
        districts = {w.code: w.district_code for w in areas.wards.values()}
        stage = HotspotStage(self.config, adjacency=build_adjacency(features),
                             districts=districts, wards=[f.ward_code for f in features])
        stage.set_lateness(self.views.current.lateness)
        self._lateness = self.views.current.lateness
        return stage

    # -- state --------------------------------------------------------------------------------

    async def _load(self) -> None:
        latest: dict[bytes, bytes] = {}
        async for msg in scan(self.settings, self.topics.hotspot_state):
            if msg.key is not None and msg.value is not None:
                latest[msg.key] = msg.value
        state = decode_snapshot(latest)
        assert self.stage is not None
        if state is not None:
            self.stage.restore(state)
            head = json.loads(latest[b"head"])
            self._slot = 1 - int(head["slot"])
        for sub in self.views.current.subs:
            topic = self.topics.hotspots(sub.group)
            ids = {m.key.decode() async for m in scan(self.settings, topic) if m.key}
            self.sent.seed(sub.group, ids)

    def _snapshot(self) -> list[list[Out]]:
        """Chunks, then (after they are acknowledged) the head that names them."""
        assert self.stage is not None
        t0 = time.perf_counter()
        *chunks, head = encode_snapshot(self.stage.to_state(), self._slot)
        topic = self.topics.hotspot_state
        self._slot = 1 - self._slot
        self.m_snap_bytes.set(sum(len(v) for _, v in chunks))
        took = time.perf_counter() - t0
        self.m_snap.observe(took)
        self._interval = max(SNAPSHOT_MIN_INTERVAL_S, took / SNAPSHOT_MAX_SHARE)
        # Watermarks are per partner feed; the metrics stay per feed (a fixed label set): the
        # slowest partner's lag, silent if any partner is, late records summed.
        lag: dict[str, int] = {}
        silent: dict[str, int] = {}
        late: dict[str, int] = {}
        for feed in self.feed_status():
            name = feed["feed"]
            lag[name] = max(lag.get(name, 0), feed["lag_seconds"] or 0)
            silent[name] = max(silent.get(name, 0), 1 if feed["state"] == "silent" else 0)
            late[name] = late.get(name, 0) + feed["late_counted"]
        for name in lag:
            self.m_feed_lag.labels(name).set(lag[name])
            self.m_feed_silent.labels(name).set(silent[name])
            self.m_feed_late.labels(name).set(late[name])
        return [[Out(topic, v, key=k, partition=0) for k, v in chunks],
                [Out(topic, head[1], key=head[0], partition=0)]]

    def feed_status(self) -> list[dict[str, Any]]:
        """Per partner feed: watermark, lag, ok/late/silent (hotspot_stage.feed_status)."""
        return [] if self.stage is None else self.stage.feed_status(datetime.now(UTC))

    # -- per record and per batch (called by the router's shared stage) -------------------------

    async def prepare(self) -> None:
        """Build the study area and load state; called once the config is loaded."""
        self.stage = self._build_stage()
        await self._load()

    def start_offset(self, partition: int) -> int | None:
        assert self.stage is not None
        return self.stage.offsets.get(partition)

    def observe(self, rec: SharedRecord, partition: int, offset: int, entitled: bool,
                now: datetime, view: RoutingView) -> list[Out]:
        assert self.stage is not None
        if view.lateness is not self._lateness:  # a config change: the protocols' lateness
            self.stage.set_lateness(view.lateness)
            self._lateness = view.lateness
        result = self.stage.observe(rec, partition, offset, entitled=entitled, now=now)
        self.m_records.labels(result.reason).inc()
        self._dirty = True
        self._seen_at = time.monotonic()
        out: list[Out] = []
        for alert in result.alerts:
            out += self._send(alert, view)
        self._alerted = self._alerted or bool(out)
        return out

    def after_batch(self) -> list[list[Out]]:
        """A snapshot after a batch that raised alerts, after a pause in the stream, else when
        the interval (SNAPSHOT_MIN_INTERVAL_S, longer when snapshots are slow) has passed."""
        assert self.stage is not None
        now = time.monotonic()
        if now - self._gauges_at >= 1.0:
            # At most once a second: state_size walks every window (1.3 % of the router's
            # samples when it ran after each of the small batches of a 200/s stream).
            self._gauges_at = now
            self.m_state.set(self.stage.state_size())
            self.m_late.set(self.stage.late_events())
        idle = now - self._seen_at >= SNAPSHOT_IDLE_S and now - self._last >= SNAPSHOT_IDLE_S
        if self._dirty and (self._alerted or idle or now - self._last >= self._interval):
            self._dirty = self._alerted = False
            self._last = now
            return self._snapshot()
        return []

    def on_stop(self) -> list[list[Out]]:
        if self.stage is None or not self._dirty:
            return []
        self._dirty = False
        return self._snapshot()

    def _send(self, alert: Alert, view: RoutingView) -> list[Out]:
        from services.core.audit.facts import alert_fact, encode_fact, fact_key

        out = []
        now = datetime.now(UTC)
        for group in view.alert_groups(alert):
            protocol_id = alert.category.split("|", 1)[0]
            msg = to_hotspot_alert(alert, group,
                                   suppress_below=view.suppress_for(protocol_id,
                                                                    self.config.suppress_below),
                                   ward_names=self.ward_names, raised_at=now)
            if not self.sent.first_time(group, msg.alert_id):
                self.m_alert_dupes.inc()
                continue
            value = msg.model_dump_json().encode()
            out.append(Out(self.topics.hotspots(group), value, key=msg.alert_id.encode(),
                           headers=[("protocol", msg.protocol.encode())]))
            # None for a version no longer in the config: the fact still names the ref.
            fact = alert_fact(msg, group=group, lawful_basis=view.basis_of(msg.protocol), at=now)
            out.append(Out(self.topics.audit_facts, encode_fact(fact), key=fact_key(fact)))
            self.m_alerts.labels(group, alert.window).inc()
        return out

    def current_for(self, group: str, kind: str = "week") -> list[dict[str, Any]]:
        """Open-window rows for the wards ``group`` covers, counts suppressed as "<N"."""
        if self.stage is None:
            return []
        view = self.views.current
        sub = view.sub_of(group)
        if sub is None:
            return []
        rows = []
        for row in self.stage.current(kind):  # type: ignore[arg-type]
            ward = row["ward_code"]
            district = self.stage.district_of(ward)
            if not (row["protocol_id"] in sub.protocols and sub.covers_ward(ward, district)
                    and sub.covers_category(row["category"])):
                continue
            n = view.suppress_for(row["protocol_id"], self.config.suppress_below)
            rows.append({**row, "count": str(row["count"]) if row["count"] >= n else f"<{n}"})
        return rows
