"""The group API's state (``GroupWeb``: tokens, the router's subscriptions, per-group tallies
and delivered records, metrics) and the dependencies that inject it and the caller's
authorisation into the routes (group_routes.py, page_routes.py).

Every route that touches a group's data runs ``authorise``: no or unknown/revoked token 401, a
token of another group 403, whatever the route. Data is read only from the path group's own
topics (``s115.deliver.<group>``, ``s115.hotspots.<group>``), never from ``s115.shared``, so even
a routing bug here could not show a group what the router did not deliver to it. Exports, the
summary and the pack are served from the router's own per-group state, caught up from the
group's topic, not by re-reading the topic per request.

Tokens come from ``Authorization: Bearer``, then ``?token=``, then the page cookie.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Query, Request
from pydantic import ValidationError

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import Bearer
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for
from services.core.ops.metrics import ServiceMetrics
from services.router.subscriptions import Subscription
from services.router.web import kafka_io, records
from services.router.web.access_audit import FactSink, KafkaFactSink, read_fact
from services.router.web.district_only import DistrictOnlyRecords, not_received, ward_districts
from services.router.web.summary import public_count
from services.router.web.svgmap import ward_svg
from services.router.web.tally import WardTally
from services.router.web.tokens import group_token_store

COOKIE = "s115hub_group_token"
KEEPALIVE_SECONDS = 15.0
TALLY_REFRESH_SECONDS = 2.0
STATIC = resources.files("services.router.web") / "static"
STATIC_FILES = {"group.js": "text/javascript", "group.css": "text/css",
                "alert_why.js": "text/javascript"}


By = Annotated[records.TimeBasis, Query(description="event: when it happened (records "
                                                    "without a released event time are "
                                                    "left out); released: when it left "
                                                    "the hub.")]


class GroupSource(Protocol):
    """What the web app needs of the router: its current subscriptions and readiness."""

    @property
    def subs(self) -> list[Subscription]: ...

    def ready(self) -> tuple[bool, str]: ...


def not_received_counts(count: int, suppress_below: int) -> dict[str, Any]:
    return {"district_only_not_received": count,
            "district_only_not_received_shown": public_count(count, suppress_below)}


def group_wards(sub: Subscription, areas: AreaIndex) -> list[str]:
    """The wards a group's subscription covers, as far as the boundaries know them."""
    codes = {c for c in sub.wards if c in areas.wards}
    for d in sub.districts:
        codes.update(w.code for w in areas.wards_in(d))
    for name in sub.district_names:
        lad = areas.district_by_name.get(name)
        if lad:
            codes.update(w.code for w in areas.wards_in(lad))
    return sorted(codes)


@dataclass
class _GroupTally:
    """The router's own state for one group's page: the week tally and the delivered records
    (first copy of each hub record id), caught up from the group's topic at most every
    ``TALLY_REFRESH_SECONDS`` and served to the page, exports and pack from memory."""
    tally: WardTally = field(default_factory=WardTally)
    positions: dict[int, int] = field(default_factory=dict)
    refreshed: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    records: dict[str, SharedRecord] = field(default_factory=dict)
    #: Records dropped (oldest first) to stay under MAX_RECORDS: exports then re-read the topic.
    dropped: int = 0


@dataclass
class _GroupAlerts:
    """The latest version of each of a group's alerts, and where its topic was read up to."""
    alerts: dict[str, HotspotAlert] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


#: Delivered records held per group for the page and exports (~2 kB each).
MAX_RECORDS = 100_000


class GroupWeb:
    def __init__(self, settings: Settings, source: GroupSource, metrics: ServiceMetrics,
                 audit_sink: FactSink | None = None) -> None:
        self.settings = settings
        self.audit_sink: FactSink = audit_sink or KafkaFactSink(settings)
        self.source = source
        self.topics = topics_for(settings)
        self.tokens = group_token_store(settings)
        self.areas = AreaIndex.load(settings.boundaries_dir)
        self.tallies: dict[str, _GroupTally] = {}
        self.alert_state: dict[str, _GroupAlerts] = {}
        # District-only records on the shared topic, for ward groups' counts (district_only.py).
        self.district_only = DistrictOnlyRecords()
        self.district_only_state = _GroupTally()
        self.svg_cache: dict[tuple[str, ...], str] = {}
        self.m_requests = metrics.counter(
            "web_requests_total", "Group web requests, by endpoint and outcome.",
            ["endpoint", "outcome"])
        self.m_streams = metrics.gauge("web_streams_open", "Open server-sent event streams.")
        self.m_events = metrics.counter("web_events_sent_total", "Events sent on group streams.",
                                        ["kind"])
        self.m_exported = metrics.counter("web_export_records_total",
                                          "Records exported, by format.", ["format"])
        self.m_bad = metrics.counter("web_unreadable_messages_total",
                                     "Messages on a group topic that did not parse; skipped.",
                                     ["kind"])

    # -- access -------------------------------------------------------------------------------

    def token_of(self, request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and auth[7:].strip():
            return auth[7:].strip()
        return request.query_params.get("token") or request.cookies.get(COOKIE)

    def authorise(self, request: Request, group: str, endpoint: str) -> Subscription:
        """The group's subscription, or an HTTPException naming why not."""
        token = self.token_of(request)
        bearer = self.tokens.identify(token) if token else None
        holder = bearer.holder if bearer else None
        if bearer is None:
            self.m_requests.labels(endpoint, "unauthorised").inc()
            raise HTTPException(
                401, "no token" if not token else "unknown or revoked token",
                headers={"WWW-Authenticate": 'Bearer realm="s115hub groups"'})
        if holder != group:
            self.m_requests.labels(endpoint, "forbidden").inc()
            raise HTTPException(403, f"this token is for another group, not {group!r}")
        ok, why = self.source.ready()
        if not ok:
            self.m_requests.labels(endpoint, "unavailable").inc()
            raise HTTPException(503, f"router not ready: {why}", headers={"Retry-After": "2"})
        sub = next((s for s in self.source.subs if s.group == group), None)
        if sub is None:
            self.m_requests.labels(endpoint, "unknown_group").inc()
            raise HTTPException(404, f"group {group!r} is not in the county configuration")
        self.m_requests.labels(endpoint, "ok").inc()
        request.state.bearer = bearer
        return sub

    async def audit(self, request: Request, group: str, what: str,
                    detail: dict[str, Any] | None = None) -> None:
        """Put "this member read ``what``" on the audit chain before serving it; 503 if the
        fact cannot be recorded (access_audit.py)."""
        bearer: Bearer = request.state.bearer
        try:
            await self.audit_sink.send(read_fact(group, bearer, what, detail))
        except Exception as exc:
            self.m_requests.labels(what, "unaudited").inc()
            raise HTTPException(503, "the read cannot be recorded on the audit chain; try "
                                     "again shortly", headers={"Retry-After": "5"}) from exc

    def group_name(self, group: str) -> str:
        names = getattr(self.source, "group_names", None) or {}
        return str(names.get(group, group))

    def suppress_below(self, group: str) -> int:
        """Small counts are shown as "<N" with N the stricter of the hub's setting and every
        live protocol naming the group: the page must never show what a protocol hides."""
        per_protocol = getattr(self.source, "suppress_below_for", None)
        floor = per_protocol(group) if per_protocol is not None else 0
        return max(self.settings.group_page_suppress_below, floor)

    def ward_names(self, sub: Subscription) -> dict[str, str]:
        return {c: self.areas.wards[c].name for c in group_wards(sub, self.areas)}

    def still_allowed(self, token: str | None, group: str) -> bool:
        return token is not None and self.tokens.authenticate(token) == group

    # -- data ---------------------------------------------------------------------------------

    def parse_delivery(self, value: bytes) -> SharedRecord | None:
        try:
            return SharedRecord.model_validate_json(value)
        except ValidationError:
            self.m_bad.labels("delivery").inc()
            return None

    async def deliveries(self, group: str) -> list[SharedRecord]:
        out = []
        async for msg in scan(self.settings, self.topics.deliver(group)):
            rec = self.parse_delivery(msg.value)
            if rec is not None:
                out.append(rec)
        return out

    async def tally(self, group: str, *, fresh: bool = False) -> WardTally:
        """The group's state, caught up from its topic at most every TALLY_REFRESH_SECONDS;
        ``fresh``: catch up now (exports and record lists must include what was just
        delivered; a catch-up reads only the messages since the last one)."""
        gt = self.tallies.setdefault(group, _GroupTally())
        async with gt.lock:
            if fresh or time.monotonic() - gt.refreshed >= TALLY_REFRESH_SECONDS:
                values, gt.positions = await kafka_io.catch_up(
                    self.settings, self.topics.deliver(group), gt.positions)
                now = datetime.now(UTC)
                for value in values:
                    rec = self.parse_delivery(value)
                    if rec is not None and rec.hub_record_id not in gt.records:
                        gt.records[rec.hub_record_id] = rec
                        if len(gt.records) > MAX_RECORDS:
                            del gt.records[next(iter(gt.records))]
                            gt.dropped += 1
                    when = records.record_time(rec, "event") if rec else None
                    if rec is not None and when is not None:
                        # Generalised past the ward (risk gate, county protocols): counted
                        # apart, under "", so the page can say how many it cannot place.
                        gt.tally.add(rec.ward_code or "", when, now)
                gt.refreshed = time.monotonic()
        return gt.tally

    async def district_only_not_received(self, sub: Subscription, start: datetime | None = None,
                                         end: datetime | None = None, *,
                                         category: str | None = None,
                                         feed: str | None = None) -> list[SharedRecord]:
        """District-only records in the districts of the group's wards that it could not
        receive (district_only.py), caught up from the shared topic at most every
        TALLY_REFRESH_SECONDS. Only groups that take single wards read it."""
        if not ward_districts(sub, self.areas):
            return []
        st = self.district_only_state
        async with st.lock:
            if time.monotonic() - st.refreshed >= TALLY_REFRESH_SECONDS:
                values, st.positions = await kafka_io.catch_up(
                    self.settings, self.topics.shared, st.positions)
                for value in values:
                    rec = self.parse_delivery(value)
                    if rec is not None:
                        self.district_only.add(rec)
                st.refreshed = time.monotonic()
        live = getattr(self.source, "live", None) or {}
        return not_received(self.district_only.records.values(), sub, self.areas, live, start,
                            end, category=category, feed=feed)

    async def records(self, group: str, *, fresh: bool = False) -> list[SharedRecord]:
        """The group's delivered records, from the router's state (caught up first)."""
        await self.tally(group, fresh=fresh)
        return list(self.tallies[group].records.values())

    async def alerts(self, group: str) -> list[HotspotAlert]:
        """The group's alerts (latest version of each alert id), from the router's state,
        caught up first with what its hot-spot topic got since the last call."""
        st = self.alert_state.setdefault(group, _GroupAlerts())
        async with st.lock:
            values, st.positions = await kafka_io.catch_up(
                self.settings, self.topics.hotspots(group), st.positions)
            for value in values:
                try:
                    alert = HotspotAlert.model_validate_json(value)
                except ValidationError:
                    self.m_bad.labels("alert").inc()
                    continue
                st.alerts[alert.alert_id] = alert
        return list(st.alerts.values())

    async def export_records(self, group: str) -> list[SharedRecord]:
        """Records for an export: the state when it holds them all, else the whole topic."""
        recs = await self.records(group, fresh=True)
        return recs if not self.tallies[group].dropped else await self.deliveries(group)

    def svg(self, wards: list[str]) -> str:
        key = tuple(wards)
        if key not in self.svg_cache:
            self.svg_cache[key] = ward_svg(self.areas, wards)
        return self.svg_cache[key]


def web_of(request: Request) -> GroupWeb:
    """The app's GroupWeb (set by ``make_web_app``), as a route dependency."""
    web: GroupWeb = request.app.state.web
    return web


Web = Annotated[GroupWeb, Depends(web_of)]


def _authorised(group: str, request: Request) -> Subscription:
    """Authorisation as a dependency, so it runs before parameter validation: a caller without
    the group's token learns nothing about the route, not even its parameters."""
    last = request.url.path.rsplit("/", 1)[-1]
    return web_of(request).authorise(request, group, last if last in ENDPOINTS else "other")


Authorised = Annotated[Subscription, Depends(_authorised)]
#: The endpoint label of the request metrics (bounded: anything else is "other").
ENDPOINTS = frozenset({"wards.svg", "wards.json", "stream", "export.csv", "export.geojson",
                       "summary.json", "trend.json", "records.json", "pack.pdf", "pack.html"})
