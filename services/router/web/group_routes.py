"""The group API's own routes (page, map, week tally, live stream, exports) as one APIRouter.

State is the app's ``GroupWeb`` (group_web.py), injected into each handler as a
dependency; authorisation runs first as its own dependency (``Authorised``), so a caller without
the group's token learns nothing about a route, not even its parameters. The page's data routes
(summary, trend, records, pack) are in page_routes.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse

from schemas.shared import SharedRecord
from services.core.crypto.hashed_tokens import Bearer
from services.router.hotspots.detector import window_bounds, window_index
from services.router.web import kafka_io, positions, records
from services.router.web.group_web import (
    COOKIE,
    KEEPALIVE_SECONDS,
    STATIC,
    STATIC_FILES,
    Authorised,
    By,
    GroupWeb,
    Web,
    group_wards,
    not_received_counts,
)
from services.router.web.page_html import group_page, token_form
from services.router.web.page_routes import OptFrom, OptTo, period


def _sse(event: str, data: str, event_id: str | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id else []
    lines.append(f"event: {event}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


async def _export(web: GroupWeb, request: Request, group: str, fmt: str,
                  start: datetime | None, end: datetime | None, by: records.TimeBasis
                  ) -> tuple[list[SharedRecord], datetime, datetime]:
    s, e = period(start, end)
    rows = list(records.select(await web.export_records(group), s, e, by))
    await web.audit(request, group, f"export.{fmt}", {
        "from": s.isoformat(), "to": e.isoformat(), "by": by, "records": len(rows)})
    web.m_exported.labels(fmt).inc(len(rows))
    return rows, s, e


def _filename(group: str, start: datetime, end: datetime, ext: str) -> dict[str, str]:
    stamp = f"{records.as_utc(start):%Y%m%dT%H%M}-{records.as_utc(end):%Y%m%dT%H%M}"
    return {"Content-Disposition": f'attachment; filename="{group}-{stamp}.{ext}"'}


router = APIRouter()


@router.get("/_static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise HTTPException(404, "no such file")
    return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name],
                    headers={"Cache-Control": "no-cache"})


@router.get("/{group}/", response_class=HTMLResponse, summary="The group's web page")
async def page(group: str, request: Request, web: Web) -> Response:
    base = f"{request.scope.get('root_path', '')}/{group}"
    try:
        web.authorise(request, group, "page")
    except HTTPException as exc:
        if exc.status_code == 401:
            msg = ("That token is unknown or has been revoked." if web.token_of(request)
                   else "Enter your group's token to open its page.")
            return HTMLResponse(token_form(group, msg), status_code=401)
        raise
    token = request.query_params.get("token")
    if token:
        resp: Response = RedirectResponse(f"{base}/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=base,
                        secure=request.url.scheme == "https")
        return resp
    await web.audit(request, group, "page")
    bearer: Bearer = request.state.bearer
    return HTMLResponse(group_page(group, web.group_name(group),
                                   request.scope.get("root_path", ""), bearer.member),
                        headers={"Cache-Control": "no-store"})


@router.get("/{group}", include_in_schema=False)
def page_slash(group: str, request: Request) -> Response:
    root = request.scope.get("root_path", "")
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{root}/{group}/{query}", status_code=307)


@router.get("/{group}/logout", include_in_schema=False)
def logout(group: str, request: Request) -> Response:
    base = f"{request.scope.get('root_path', '')}/{group}"
    resp = RedirectResponse(f"{base}/", status_code=303)
    resp.delete_cookie(COOKIE, path=base)
    return resp


@router.get("/{group}/wards.svg", summary="The group's wards from the real boundaries")
def wards_svg(sub: Authorised, web: Web) -> Response:
    return Response(web.svg(group_wards(sub, web.areas)), media_type="image/svg+xml")


@router.get("/{group}/feeds.json", summary="Whether each partner feed is current (issue 17)")
def feeds_json(group: str, _: Authorised, web: Web) -> dict[str, Any]:
    # Feed names and lags only: no counts, no wards, so nothing a group may not see.
    status = getattr(web.source, "feed_status", None)
    rows = status() if callable(status) else []
    return {"group": group, "feeds": [
        {k: f.get(k) for k in ("feed", "state", "lag_seconds", "late_counted")}
        for f in rows]}


@router.get("/{group}/wards.json", summary="This week's count against expected, per ward")
async def wards_json(group: str, sub: Authorised, web: Web) -> dict[str, Any]:
    tally = await web.tally(group)
    window = tally.window()
    n = web.suppress_below(group)
    out = []
    for code in group_wards(sub, web.areas):
        st = tally.status(code)
        ward = web.areas.wards[code]
        out.append({"ward_code": code, "ward_name": ward.name,
                    "district_code": ward.district_code, "count": st.public_count(n),
                    "expected": None if st.expected is None else round(st.expected, 2),
                    "band": st.band})
    return {"group": group, "window": "week",
            "window_start": window[0].isoformat() if window else None,
            "window_end": window[1].isoformat() if window else None,
            "suppress_below": n, "wards": out,
            # Records this week the group received without a ward (the risk gate placed
            # them only at the district): the true count, and as the page may show it.
            "district_only": tally.status("").count,
            "district_only_shown": tally.status("").public_count(n),
            # District-only records in the districts of the group's wards, which a group
            # of single wards cannot receive: told as a count (district_only.py).
            # This week as the tally has it, or (nothing delivered yet) the current week.
            **not_received_counts(len(await web.district_only_not_received(
                sub, *(window or window_bounds(
                    "week", window_index("week", datetime.now(UTC)))))), n)}


@router.get("/{group}/stream", summary="Live deliveries and alerts (server-sent events)",
         response_description="text/event-stream: `delivery` events carry a SharedRecord, "
                              "`alert` events a HotspotAlert; ids resume via Last-Event-ID.")


async def stream(
    group: str, request: Request, _: Authorised, web: Web,
    kinds: Annotated[str, Query(description="deliveries, alerts or both (comma-separated)")]
        = "deliveries,alerts",
    start: Annotated[Literal["start", "end"], Query(
        alias="from", description="Without Last-Event-ID: the topics' start or end.")] = "end",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    wanted = {k.strip() for k in kinds.split(",") if k.strip()}
    if not wanted or wanted - {"deliveries", "alerts"}:
        raise HTTPException(400, f"kinds={kinds!r}: use deliveries, alerts or both")
    try:
        resume = positions.decode(last_event_id or "")
    except positions.BadEventId as exc:
        raise HTTPException(400, str(exc)) from exc
    topics = {}
    if "deliveries" in wanted:
        topics["d"] = web.topics.deliver(group)
    if "alerts" in wanted:
        topics["h"] = web.topics.hotspots(group)
    token = web.token_of(request)
    names = {"d": "delivery", "h": "alert"}
    await web.audit(request, group, "stream", {"kinds": sorted(wanted), "from": start,
                                                "resume": bool(resume)})

    async def events() -> AsyncIterator[str]:
        web.m_streams.inc()
        try:
            yield "retry: 3000\n: connected\n\n"
            quiet_since = time.monotonic()
            async for ev in kafka_io.follow(web.settings, topics, resume,
                                            from_end=start == "end"):
                if not web.still_allowed(token, group):
                    yield _sse("revoked", json.dumps({"detail": "token revoked"}))
                    return
                ok, why = web.source.ready()
                if not ok:
                    # Also how a stopping router ends its streams: uvicorn's graceful
                    # shutdown waits for open responses, and an SSE response never ends
                    # by itself. The client's EventSource reconnects after ``retry``.
                    yield _sse("closing", json.dumps({"detail": why}))
                    return
                if ev is None:
                    if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                        quiet_since = time.monotonic()
                        yield ": keep-alive\n\n"
                    continue
                quiet_since = time.monotonic()
                web.m_events.labels(names[ev.kind]).inc()
                yield _sse(names[ev.kind], ev.value.decode("utf-8"),
                           positions.encode(ev.positions))
        finally:
            web.m_streams.dec()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/{group}/export.csv", summary="The group's deliveries in a time range, as CSV")
async def export_csv(group: str, request: Request, _: Authorised, web: Web,
                     start: OptFrom = None, end: OptTo = None, by: By = "event") -> Response:
    rows, s, e = await _export(web, request, group, "csv", start, end, by)
    return Response(records.to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers=_filename(group, s, e, "csv"))


@router.get("/{group}/export.geojson",
         summary="The group's deliveries in a time range, as GeoJSON (ward points)")


async def export_geojson(group: str, request: Request, _: Authorised, web: Web,
                         start: OptFrom = None, end: OptTo = None,
                         by: By = "event") -> Response:
    rows, s, e = await _export(web, request, group, "geojson", start, end, by)
    doc = records.to_geojson(rows, web.areas, {
        "group": group, "from": s.isoformat(), "to": e.isoformat(), "by": by,
        "geometry": "ward representative point (locations were generalised to the ward)"})
    return JSONResponse(doc, media_type="application/geo+json",
                        headers=_filename(group, s, e, "geojson"))
