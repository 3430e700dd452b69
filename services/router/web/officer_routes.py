"""The officer page's routes under ``/officer``, one APIRouter with the app's ``OfficerPage``
injected (``Page``, officer_state.py). Every view is audited before it is shown
(``OfficerPage.view``); every state-changing request is a POST refused from another site
(``same_origin``) and audited right after the change."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from html import escape

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.router.web.officer_html import SIGN_IN, page
from services.router.web.officer_state import COOKIE, Page, same_origin, when
from services.router.web.officer_views import (
    credentials_html,
    letters_html,
    protocols_html,
    reconcile_form,
    reconcile_html,
    status_html,
)

router = APIRouter(include_in_schema=False)
SameSite = [Depends(same_origin)]


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in urllib.parse.parse_qs(body).items()}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, op: Page) -> Response:
    if op.officer_of(request) is None:
        return page("Officer sign-in", SIGN_IN)
    officer = await op.view(request, "status")
    return page("Hub status", status_html(await op.status()), officer=officer)


@router.post("/sign-in", dependencies=SameSite)
async def sign_in(request: Request, op: Page) -> Response:
    token = (await _form(request)).get("token", "").strip()
    officer = op.officers.authenticate(token) if token else None
    if officer is None:
        return page("Officer sign-in", '<p class="bad" id="error">Unknown or revoked '
                                        "officer token.</p>" + SIGN_IN)
    await op.audit("officer.signed_in", officer, "officer-page")
    resp = RedirectResponse("/officer/", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/officer",
                    secure=request.url.scheme == "https")
    return resp


@router.post("/sign-out", dependencies=SameSite)
async def sign_out(request: Request, op: Page) -> Response:
    officer = op.officer_of(request)
    if officer is not None:
        await op.audit("officer.action", officer, "sign-out")
    resp = RedirectResponse("/officer/", status_code=303)
    resp.delete_cookie(COOKIE, path="/officer")
    return resp


@router.get("/reconcile", response_class=HTMLResponse)
async def reconcile_page(request: Request, op: Page, partner: str = "", start: str = "",
                         end: str = "") -> Response:
    officer = await op.view(request, "reconcile", partner=partner, start=start, end=end)
    county = (await op.config()).county
    now = datetime.now(UTC)
    s, e = when(start, now - timedelta(days=30)), when(end, now + timedelta(minutes=1))
    body = reconcile_form([p.id for p in county.partners] if county else [], partner, s, e)
    if partner:
        body += reconcile_html(await op.reconcile(partner, s, e), partner, s, e)
    return page("Reconciliation", body, officer=officer)


@router.get("/reconcile.csv")
async def reconcile_csv(request: Request, op: Page, partner: str, start: str,
                        end: str) -> Response:
    from services.core.audit.reconcile import to_csv

    await op.view(request, "reconcile.csv", partner=partner, start=start, end=end)
    now = datetime.now(UTC)
    s, e = when(start, now), when(end, now)
    rec = await op.reconcile(partner, s, e)
    name = f"reconciliation-{partner}-{s.date()}-{e.date()}.csv"
    return Response(to_csv(rec), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, op: Page) -> Response:
    from services.core.ops.dead_letters import read_letters

    officer = await op.view(request, "dead-letters")
    return page("Dead letters", letters_html(await read_letters(op.settings)), officer=officer)


@router.get("/protocols", response_class=HTMLResponse)
async def protocols(request: Request, op: Page) -> Response:
    officer = await op.view(request, "protocols")
    today = datetime.now(UTC).date()
    return page("Protocols", protocols_html(op.protocol_rows(await op.config(), today), today),
                officer=officer)


@router.get("/protocols/{ref}", response_class=HTMLResponse)
async def protocol_doc(request: Request, op: Page, ref: str) -> Response:
    from services.protocols.document import DocumentContext, render_html
    from services.protocols.in_force import protocol_set_of

    await op.view(request, "protocol", ref=ref)
    state = await op.config()
    pset, _ = protocol_set_of(state)
    p = pset.get(ref)
    if p is None:
        raise HTTPException(404, f"no protocol {ref!r} on the hub")
    today = datetime.now(UTC).date()
    st = pset.status(p, today)
    county = state.county
    names = ({x.id: x.name for x in county.partners}
             | {g.id: g.name for g in county.groups} if county else {})
    return HTMLResponse(render_html(p, DocumentContext(
        names, {}, None, today, "LIVE" if st.live else "NOT LIVE: " + "; ".join(st.reasons))),
        headers={"Cache-Control": "no-store"})


@router.get("/credentials", response_class=HTMLResponse)
async def credentials(request: Request, op: Page) -> Response:
    officer = await op.view(request, "credentials")
    return page("Credentials", credentials_html(await op.holders()), officer=officer)


@router.post("/credentials/issue", response_class=HTMLResponse, dependencies=SameSite)
async def issue(request: Request, op: Page) -> Response:
    officer = op.require(request)
    f = await _form(request)
    kind, holder = f.get("kind", ""), f.get("holder", "")
    issued = (await op.store_for(kind, holder)).issue(holder)
    await op.audit("officer.action", officer, f"{kind}.credential.issued",
                   {"holder": holder, "token_id": issued.token_id})
    body = (f'<p>Issued {escape(kind)} credential <b>{escape(issued.token_id)}</b> for '
            f"{escape(holder)}. Give it to them now: it is shown once and only its hash is "
            f'kept.</p><pre id="issued">{escape(issued.token)}</pre>'
            + credentials_html(await op.holders()))
    return page("Credentials", body, officer=officer)


@router.post("/credentials/revoke", response_class=HTMLResponse, dependencies=SameSite)
async def revoke(request: Request, op: Page) -> Response:
    from services.core.config.errors import ConfigError

    officer = op.require(request)
    f = await _form(request)
    kind, holder, token_id = f.get("kind", ""), f.get("holder", ""), f.get("token_id")
    store = await op.store_for(kind, holder)
    try:
        gone = store.revoke(holder, token_id or None)
    except ConfigError as exc:
        raise HTTPException(404, str(exc)) from exc
    await op.audit("officer.action", officer, f"{kind}.credential.revoked",
                   {"holder": holder, "token_ids": gone})
    body = (f'<p id="revoked">Revoked {escape(", ".join(gone))} for {escape(holder)}.</p>'
            + credentials_html(await op.holders()))
    return page("Credentials", body, officer=officer)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, op: Page) -> Response:
    officer = await op.view(request, "audit")
    body = ('<form method="post" action="/officer/audit/verify">'
            '<button id="verify">Verify the audit chain</button></form>')
    return page("Audit", body, officer=officer)


@router.post("/audit/verify", response_class=HTMLResponse, dependencies=SameSite)
async def verify(request: Request, op: Page) -> Response:
    officer = await op.view(request, "audit.verify")
    report = await op.verify_chain()
    cls = "ok" if report.ok else "bad"
    text = (f"OK: {report.events_checked} events and {report.checkpoints_checked} "
            f"checkpoints verified; head {report.head_hash}" if report.ok else
            f"FAILED at position {report.first_bad_position}: {report.reason}")
    return page("Audit", f'<p id="verdict" class="{cls}">{escape(text)}</p>', officer=officer)
