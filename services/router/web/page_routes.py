"""The group page's data routes: period summary, trend, and the records behind a ward. Served from
the router's own per-group state (``GroupWeb.records``), not by re-reading the group's topic per
request. Every route runs the same authorisation as the rest of the group API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from services.core.config.errors import ConfigError
from services.router.subscriptions import Subscription
from services.router.web import summary
from services.router.web.access_audit import reader_name
from services.router.web.group_web import Authorised, GroupWeb, Web, not_received_counts
from services.router.web.pack import fields_by_protocol, pack_html
from services.router.web.pdf import PdfError, render_pdf_async
from services.router.web.records import as_utc

DEFAULT_DAYS = 28
#: Summary and trend look four periods back; beyond ~5 years that stops meaning anything.
MAX_COMPARED = timedelta(days=2000)


class PeriodError(ConfigError, ValueError):
    """A from/to pair that makes no period."""

OptFrom = Annotated[datetime | None, Query(
    alias="from", description="Start, inclusive (ISO 8601; no offset means UTC). Default: "
                              "28 days before `to`.")]
OptTo = Annotated[datetime | None, Query(
    alias="to", description="End, exclusive. Default: the end of today (UTC).")]
Category = Annotated[str | None, Query(description="Only this category.")]
Feed = Annotated[str | None, Query(description="Only this feed (police, fire, health, council).")]


def period(start: datetime | None, end: datetime | None, days: int = DEFAULT_DAYS, *,
           compared: bool = False) -> tuple[datetime, datetime]:
    """``period_bounds`` for a request: a bad range is a 400. ``compared``: the route also
    looks at the periods before it (summary, trend), so its length is bounded."""
    try:
        s, e = period_bounds(start, end, days)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if compared and e - s > MAX_COMPARED:
        raise HTTPException(400, f"a period compared with the ones before it is at most "
                                 f"{MAX_COMPARED.days} days")
    return s, e


def period_bounds(start: datetime | None, end: datetime | None,
                  days: int = DEFAULT_DAYS) -> tuple[datetime, datetime]:
    """[start, end) with the defaults filled in: to = the end of today (UTC), from = ``days``
    before to. A from without a to runs ``days`` from it. Refuses an empty or reversed range."""
    def utc(t: datetime) -> datetime:
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)

    if end is None:
        if start is not None:
            end = utc(start) + timedelta(days=days)
        else:
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            end = today + timedelta(days=1)
    end = utc(end)
    start = utc(start) if start is not None else end - timedelta(days=days)
    if end <= start:
        raise PeriodError(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    return start, end


router = APIRouter()


@router.get("/{group}/summary.json",
            summary="Per-ward counts for a period, against the previous period")


async def summary_json(group: str, request: Request, sub: Authorised,
                       web: Web, start: OptFrom = None, end: OptTo = None,
                       category: Category = None, feed: Feed = None) -> dict[str, Any]:
    s, e = period(start, end, compared=True)
    recs = await web.records(group)
    n = web.suppress_below(group)
    doc = summary.summarise(recs, web.ward_names(sub), s, e, suppress_below=n,
                            category=category or None, feed=feed or None)
    # A group of single wards cannot receive its districts' district-only records; it is
    # told how many there were (district_only.py).
    doc.update(not_received_counts(len(await web.district_only_not_received(
        sub, as_utc(s), as_utc(e), category=category or None, feed=feed or None)), n))
    return {"group": group, "name": web.group_name(group), **doc}


@router.get("/{group}/trend.json", summary="Counts per day or week and category")
async def trend_json(group: str, _: Authorised, web: Web,
                     start: OptFrom = None, end: OptTo = None,
                     ward: Annotated[str | None, Query(
                         description="A ward code; empty: records placed only at the "
                                     "district; absent: all.")] = None,
                     feed: Feed = None) -> dict[str, Any]:
    s, e = period(start, end, compared=True)
    return summary.trend(await web.records(group), s, e, ward=ward, feed=feed or None)


@router.get("/{group}/records.json",
            summary="The depersonalised records behind a ward (audited as a read)")


async def records_json(group: str, request: Request, sub: Authorised, web: Web,
                       ward: Annotated[str, Query(
                           description="A ward code, or empty for the records placed only "
                                       "at the district.")],
                       start: OptFrom = None, end: OptTo = None,
                       category: Category = None, feed: Feed = None) -> dict[str, Any]:
    s, e = period(start, end)
    doc = summary.ward_records(await web.records(group, fresh=True), s, e, ward=ward,
                               category=category or None, feed=feed or None,
                               names=web.ward_names(sub))
    await web.audit(request, group, "records", {
        "ward": ward, "from": s.isoformat(), "to": e.isoformat(), "category": category,
        "feed": feed, "records": doc["total"]})
    return doc


@router.get("/{group}/pack.html", summary="The tasking pack for a period, as HTML")
async def pack_html_route(group: str, request: Request, sub: Authorised, web: Web,
                          start: OptFrom = None, end: OptTo = None) -> Response:
    s, e = period(start, end, compared=True)
    html = await _pack(web, request, group, sub, s, e, "pack.html")
    return Response(html, media_type="text/html; charset=utf-8")


@router.get("/{group}/pack.pdf", summary="The tasking pack for a period, as PDF",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})


async def pack_pdf_route(group: str, request: Request, sub: Authorised, web: Web,
                         start: OptFrom = None, end: OptTo = None) -> Response:
    s, e = period(start, end, compared=True)
    html = await _pack(web, request, group, sub, s, e, "pack.pdf")
    try:
        body = await render_pdf_async(html, web.settings.chromium_path)
    except PdfError as exc:
        raise HTTPException(503, str(exc)) from exc
    name = f"{group}-tasking-pack-{s:%Y%m%d}-{e:%Y%m%d}.pdf"
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def _pack(web: GroupWeb, request: Request, group: str, sub: Subscription,
                start: datetime, end: datetime, what: str) -> str:
    recs = await web.records(group, fresh=True)
    alerts = await web.alerts(group)
    bearer = request.state.bearer
    await web.audit(request, group, what, {"from": start.isoformat(), "to": end.isoformat()})
    return pack_html(group=group, name=web.group_name(group), start=start, end=end,
                     records=recs, alerts=alerts, wards=web.ward_names(sub),
                     svg=web.svg(sorted(web.ward_names(sub))),
                     suppress_below=web.suppress_below(group),
                     protocol_fields=fields_by_protocol(recs),
                     district_only_not_received=len(
                         await web.district_only_not_received(sub, as_utc(start), as_utc(end))),
                     generated_at=datetime.now(UTC), generated_by=reader_name(bearer))
