"""The officer page (issue 16): status, reconciliation, dead letters, protocols with their review
dates, partner and group credentials (issue, revoke) and audit verification, beside the group
pages in the router, for signed-in officers only, every action put on the audit chain.

Why here: the router already serves the group pages and is the audit chain's writer, and
everything the page shows is read from durable topics (``services/core/ops/durable.py``) or the
hashed credential files in the state directory. The router never sees personal data, and neither
does this page: dead letters show their metadata (partner, feed, position, the partner's
reference, masked pointers and reasons), never the sealed original; reconciliation shows ids,
groups and outcomes.

Access: an officer token (``s115hub officer token issue NAME``; hash only in
``officer-tokens.json``) is typed into the sign-in form once and kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/officer``. Every request re-checks it against the file, so a
revoked token is refused at once. State-changing requests are POSTs, and a request whose
``Origin`` is another site is refused (the cookie's SameSite=Strict already withholds it there).

Auditing: each page view and each action is a ``officer.signed_in`` or ``officer.action`` config
fact (actor ``<officer>@officer-page``), published *before* a view is shown and right after a
change is made; if the broker does not take it, the page says so and shows nothing further.

Over 400 lines because the officer routes share one closure over the page's state and sign-in; the
HTML helpers are already in officer_html.py.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from services.core.audit.facts import config_fact
from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import HashedTokenStore
from services.core.crypto.officer_trust import AnchorFile
from services.router.web.officer_html import SIGN_IN, Html, page, table
from services.router.web.officer_tokens import officer_token_store, partner_key_store
from services.router.web.tokens import group_token_store

COOKIE = "s115hub_officer"
ACTOR_SUFFIX = "@officer-page"


def _when(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        dt = (datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
              if len(value) == 10 else datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise HTTPException(400, f"{value!r} is not an ISO-8601 date or time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class OfficerPage:
    def __init__(self, settings: Settings,
                 publish: Callable[[list[dict[str, Any]]], Any] | None = None) -> None:
        self.settings = settings
        self.officers = officer_token_store(settings)
        self.partner_keys = partner_key_store(settings)
        self.group_tokens = group_token_store(settings)
        self._publish = publish

    # -- access and audit ---------------------------------------------------------------------

    def officer_of(self, request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        return self.officers.authenticate(token) if token else None

    def require(self, request: Request) -> str:
        officer = self.officer_of(request)
        if officer is None:
            raise HTTPException(401, "sign in at /officer/")
        return officer

    @staticmethod
    def same_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, "cross-site request refused")

    async def audit(self, action: str, officer: str, subject: str,
                    detail: Mapping[str, Any] | None = None) -> None:
        """Put one officer action on the chain; 503 (and nothing shown) if the broker refuses."""
        fact = config_fact(action, subject, f"{officer}{ACTOR_SUFFIX}", detail=dict(detail or {}))
        try:
            if self._publish is not None:
                await asyncio.to_thread(self._publish, [fact])
            else:
                from services.core.audit.chain_io import publish_facts

                await asyncio.to_thread(publish_facts, self.settings, [fact])
        except Exception as exc:  # kafka-python's errors share no base with ours
            raise HTTPException(503, f"not done: the audit chain did not take the record of "
                                     f"this action ({type(exc).__name__})") from exc

    async def view(self, request: Request, page: str, **detail: Any) -> str:
        officer = self.require(request)
        await self.audit("officer.action", officer, f"view:{page}", detail)
        return officer

    # -- data (durable topics only) -----------------------------------------------------------

    async def config(self) -> Any:
        from services.core.ops.durable import read_config_state

        return await read_config_state(self.settings)

    async def status_html(self) -> str:
        from services.core.kafka.topics import FEED_NAMES
        from services.core.ops.durable import read_facts
        from services.core.ops.status import build_status
        from services.protocols.in_force import protocol_rows

        facts = await read_facts(self.settings)
        today = datetime.now(UTC).date()
        county = facts.config.county
        st = build_status(
            partners={p.id: list(p.feeds) for p in county.partners} if county else {},
            groups=[g.id for g in county.groups] if county else [], feeds=list(FEED_NAMES),
            envelopes=facts.envelopes, letters=facts.letters, events=facts.events,
            protocols=protocol_rows(facts.config, today, AnchorFile(
                self.settings.resolved_officer_keys_file())), today=today)
        head = ("accepted", "rejected", "unrouted", "withheld", "generalised")

        def figs(c: Any) -> tuple[int, ...]:
            return (c.accepted, c.rejected, c.unrouted, c.withheld, c.generalised)

        parts = ["<h2>Feeds</h2>", table(("feed", "last record (UTC)", *head), [
            (f, c.last_seen.strftime("%Y-%m-%d %H:%M:%S") if c.last_seen else "never", *figs(c))
            for f, c in sorted(st.feeds.items())], "feeds"),
            "<h2>Partners</h2>", table(("partner", "feeds", *head), [
                (p, ",".join(st.partner_feeds.get(p, [])), *figs(c))
                for p, c in sorted(st.partners.items())], "partners"),
            "<h2>Groups</h2>", table(("group", "deliveries", "alerts"), [
                (g, r.deliveries, r.alerts) for g, r in sorted(st.groups.items())], "groups")]
        due = st.reviews_due()
        parts.append("<h2>Reviews due</h2>" + (table(("protocol", "review by", "days"), [
            (p.ref, p.review_by, d) for p, d in due], "reviews") if due else
            f"<p>None within {st.review_within_days} days.</p>"))
        if st.withheld_causes:
            parts.append("<p>Withheld by cause: " + escape(", ".join(
                f"{k} {v}" for k, v in sorted(st.withheld_causes.items()))) + "</p>")
        parts.append(f"<p>{st.audit_events} events on the audit chain.</p>")
        return "".join(parts)


def make_officer_router(settings: Settings,
                        publish: Callable[[list[dict[str, Any]]], Any] | None = None
                        ) -> APIRouter:
    """Routes under ``/officer`` (the caller includes them with that prefix)."""
    op = OfficerPage(settings, publish)
    r = APIRouter(include_in_schema=False)

    async def form(request: Request) -> dict[str, str]:
        op.same_origin(request)
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[-1] for k, v in urllib.parse.parse_qs(body).items()}

    @r.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        if op.officer_of(request) is None:
            return page("Officer sign-in", SIGN_IN)
        officer = await op.view(request, "status")
        return page("Hub status", await op.status_html(), officer=officer)

    @r.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        token = (await form(request)).get("token", "").strip()
        officer = op.officers.authenticate(token) if token else None
        if officer is None:
            return page("Officer sign-in", '<p class="bad" id="error">Unknown or revoked '
                                            "officer token.</p>" + SIGN_IN)
        await op.audit("officer.signed_in", officer, "officer-page")
        resp = RedirectResponse("/officer/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/officer",
                        secure=request.url.scheme == "https")
        return resp

    @r.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        op.same_origin(request)
        officer = op.officer_of(request)
        if officer is not None:
            await op.audit("officer.action", officer, "sign-out")
        resp = RedirectResponse("/officer/", status_code=303)
        resp.delete_cookie(COOKIE, path="/officer")
        return resp

    @r.get("/reconcile", response_class=HTMLResponse)
    async def reconcilepage(request: Request, partner: str = "", start: str = "",
                             end: str = "") -> Response:
        from services.core.audit.reconcile import OUTCOMES

        officer = await op.view(request, "reconcile", partner=partner, start=start, end=end)
        state = await op.config()
        partners = [p.id for p in state.county.partners] if state.county else []
        now = datetime.now(UTC)
        s, e = _when(start, now - timedelta(days=30)), _when(end, now + timedelta(minutes=1))
        opts = "".join(f'<option{" selected" if p == partner else ""}>{escape(p)}</option>'
                       for p in partners)
        body = ('<form method="get" id="reconcile-form"><select name="partner">'  # noqa: S608 - HTML
                f'{opts}</select> from <input name="start" value="{escape(s.isoformat())}"> '
                f'to <input name="end" value="{escape(e.isoformat())}"> <button>show</button>'
                "</form>")
        if partner:
            rec = await _reconcile(op, partner, s, e)
            c = rec.counts
            q = urllib.parse.urlencode({"partner": partner, "start": s.isoformat(),
                                        "end": e.isoformat()})
            body += (table(("accepted", "rejected", *[o for o in OUTCOMES if o != "rejected"],
                             "generalised"),
                            [(c["accepted"], c["rejected"],
                              *[c[o] for o in OUTCOMES if o != "rejected"], c["generalised"])],
                            "counts")
                     + f'<p><a id="csv" href="/officer/reconcile.csv?{escape(q)}">CSV for the '
                       "partner</a></p>"
                     + table(("source_id", "feed", "outcome", "received", "delivered to",
                               "generalised", "withheld", "unrouted", "rejection"),
                              [(x.source_id, x.feed, x.outcome,
                                x.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                                ", ".join(sorted(x.delivered_to)),
                                ", ".join(f"{k}:{v}" for k, v in sorted(x.generalised.items())),
                                x.withheld_cause or "", x.unrouted_reason or "",
                                x.rejection_reasons) for x in rec.rows], "records"))
        return page("Reconciliation", body, officer=officer)

    @r.get("/reconcile.csv")
    async def reconcile_csv(request: Request, partner: str, start: str, end: str) -> Response:
        from services.core.audit.reconcile import to_csv

        await op.view(request, "reconcile.csv", partner=partner, start=start, end=end)
        now = datetime.now(UTC)
        s, e = _when(start, now), _when(end, now)
        rec = await _reconcile(op, partner, s, e)
        name = f"reconciliation-{partner}-{s.date()}-{e.date()}.csv"
        return Response(to_csv(rec), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{name}"'})

    @r.get("/dead-letters", response_class=HTMLResponse)
    async def dead_letters(request: Request) -> Response:
        from services.core.ops.dead_letters import read_letters

        officer = await op.view(request, "dead-letters")
        rows = []
        for letter in await read_letters(op.settings):
            s = letter.summary()
            where = next((f"{k} {s[k]}" for k in ("line", "index", "offset") if k in s), "")
            rows.append((s["rejection_id"], s["rejected_at"], s["stage"], s["partner"],
                         s["feed"], s["source_id"] or "", where,
                         "; ".join(f"{p.get('pointer') or '/'}: {p.get('reason')}"
                                   for p in s["problems"]),
                         ", ".join(str(x) for x in s["replayed"])))
        body = ("<p>Metadata only: the original records stay sealed; replay them with "
                "<code>s115hub dlq replay</code> on the ingest host.</p>"
                + table(("id", "rejected at", "stage", "partner", "feed", "source_id",
                          "position", "why", "replayed as"), rows, "letters"))
        return page("Dead letters", body, officer=officer)

    @r.get("/protocols", response_class=HTMLResponse)
    async def protocols(request: Request) -> Response:
        from services.protocols.in_force import protocol_rows

        officer = await op.view(request, "protocols")
        today = datetime.now(UTC).date()
        rows = []
        anchors = AnchorFile(op.settings.resolved_officer_keys_file())
        for p in sorted(protocol_rows(await op.config(), today, anchors), key=lambda x: x.ref):
            link = Html(f'<a href="/officer/protocols/{urllib.parse.quote(p.ref)}">'
                         f"{escape(p.ref)}</a>")
            days = (p.review_by - today).days if p.review_by else ""
            rows.append((link, "LIVE" if p.live else "; ".join(p.reasons) or "not live",
                         p.review_by or "", days, p.retention_days or "",
                         ", ".join(p.parties)))
        body = table(("protocol", "state", "review by", "days to review", "retention days",
                       "parties"), rows, "protocols")
        return page("Protocols", body, officer=officer)

    @r.get("/protocols/{ref}", response_class=HTMLResponse)
    async def protocol_doc(request: Request, ref: str) -> Response:
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

    @r.get("/credentials", response_class=HTMLResponse)
    async def credentials(request: Request) -> Response:
        officer = await op.view(request, "credentials")
        return page("Credentials", await _credentials_body(op), officer=officer)

    @r.post("/credentials/issue", response_class=HTMLResponse)
    async def issue(request: Request) -> Response:
        officer = op.require(request)
        f = await form(request)
        kind, holder = f.get("kind", ""), f.get("holder", "")
        store = await _store_for(op, kind, holder)
        issued = store.issue(holder)
        await op.audit("officer.action", officer, f"{kind}.credential.issued",
                       {"holder": holder, "token_id": issued.token_id})
        body = (f'<p>Issued {escape(kind)} credential <b>{escape(issued.token_id)}</b> for '
                f"{escape(holder)}. Give it to them now: it is shown once and only its hash is "
                f'kept.</p><pre id="issued">{escape(issued.token)}</pre>'
                + await _credentials_body(op))
        return page("Credentials", body, officer=officer)

    @r.post("/credentials/revoke", response_class=HTMLResponse)
    async def revoke(request: Request) -> Response:
        from services.core.config.errors import ConfigError

        officer = op.require(request)
        f = await form(request)
        kind, holder, token_id = f.get("kind", ""), f.get("holder", ""), f.get("token_id")
        store = await _store_for(op, kind, holder)
        try:
            gone = store.revoke(holder, token_id or None)
        except ConfigError as exc:
            raise HTTPException(404, str(exc)) from exc
        await op.audit("officer.action", officer, f"{kind}.credential.revoked",
                       {"holder": holder, "token_ids": gone})
        body = (f'<p id="revoked">Revoked {escape(", ".join(gone))} for {escape(holder)}.</p>'
                + await _credentials_body(op))
        return page("Credentials", body, officer=officer)

    @r.get("/audit", response_class=HTMLResponse)
    async def auditpage(request: Request) -> Response:
        officer = await op.view(request, "audit")
        body = ('<form method="post" action="/officer/audit/verify">'
                '<button id="verify">Verify the audit chain</button></form>')
        return page("Audit", body, officer=officer)

    @r.post("/audit/verify", response_class=HTMLResponse)
    async def verify(request: Request) -> Response:
        op.same_origin(request)
        officer = await op.view(request, "audit.verify")
        report = await _verify(op.settings)
        cls = "ok" if report.ok else "bad"
        text = (f"OK: {report.events_checked} events and {report.checkpoints_checked} "
                f"checkpoints verified; head {report.head_hash}" if report.ok else
                f"FAILED at position {report.first_bad_position}: {report.reason}")
        return page("Audit", f'<p id="verdict" class="{cls}">{escape(text)}</p>',
                     officer=officer)

    return r


async def _reconcile(op: OfficerPage, partner: str, start: datetime, end: datetime) -> Any:
    from services.core.audit.reconcile import reconcile
    from services.core.ops.durable import read_facts

    facts = await read_facts(op.settings)
    return reconcile(partner, start, end, envelopes=facts.envelopes, letters=facts.letters,
                     events=facts.events)


async def _store_for(op: OfficerPage, kind: str, holder: str) -> HashedTokenStore:
    """The credential store for ``kind`` after checking ``holder`` is one in the county."""
    state = await op.config()
    county = state.county
    if kind == "partner":
        known, store = ([p.id for p in county.partners] if county else []), op.partner_keys
    elif kind == "group":
        known, store = ([g.id for g in county.groups] if county else []), op.group_tokens
    else:
        raise HTTPException(400, "kind must be partner or group")
    if holder not in known:
        raise HTTPException(404, f"no {kind} {holder!r} in the live county file")
    return store


async def _credentials_body(op: OfficerPage) -> str:
    state = await op.config()
    county = state.county
    parts = []
    for kind, ids, store in (
            ("partner", [p.id for p in county.partners] if county else [], op.partner_keys),
            ("group", [g.id for g in county.groups] if county else [], op.group_tokens)):
        entries = store.entries()
        rows = []
        for holder in ids:
            mine = sorted((k, e) for k, e in entries.items() if e["holder"] == holder)
            live = [k for k, e in mine if e["revoked_at"] is None]
            listing = "; ".join(f"{k} ({'revoked' if e['revoked_at'] else 'live'}, issued "
                                f"{str(e['created_at'])[:10]})" for k, e in mine) or "none"
            buttons = Html(
                f'<form class="inline" method="post" action="/officer/credentials/issue">'
                f'<input type="hidden" name="kind" value="{kind}"><input type="hidden" '
                f'name="holder" value="{escape(holder)}"><button class="issue" '
                f'data-holder="{escape(holder)}">issue</button></form>'
                + "".join(
                    f'<form class="inline" method="post" action="/officer/credentials/revoke">'
                    f'<input type="hidden" name="kind" value="{kind}"><input type="hidden" '
                    f'name="holder" value="{escape(holder)}"><input type="hidden" '
                    f'name="token_id" value="{escape(k)}"><button class="revoke" '
                    f'data-token-id="{escape(k)}">revoke {escape(k)}</button></form>'
                    for k in live))
            rows.append((holder, listing, buttons))
        parts += [f"<h2>{kind.capitalize()}s</h2>",
                  table((kind, "credentials (ids only; secrets are never kept)", ""), rows,
                         f"{kind}-credentials")]
    return "".join(parts)


async def _verify(settings: Settings) -> Any:
    from services.core.audit.chain import verify_chain
    from services.core.audit.chain_io import read_chain
    from services.core.audit.key import load_audit_key

    hub = load_audit_key(settings.resolved_audit_key_file())
    chain = await read_chain(settings)
    return verify_chain(chain.events, chain.checkpoints, {hub.key_id: hub.public})
