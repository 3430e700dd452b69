"""The officer page's views as HTML, from data the routes read (officer_routes.py): hub status,
reconciliation, dead letters, protocols and credentials. Pure: no broker, no request.

Dead letters show their metadata (partner, feed, position, the partner's reference, masked
pointers and reasons), never the sealed original; reconciliation shows ids, groups and outcomes.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from datetime import date, datetime
from html import escape
from typing import Any

from services.core.crypto.hashed_tokens import HashedTokenStore
from services.router.web.officer_html import Html, table

FIGURES = ("accepted", "rejected", "unrouted", "withheld", "generalised")


def status_html(st: Any) -> str:
    """The hub status (``services/core/ops/status.py``'s ``build_status``) as the home view."""
    def figs(c: Any) -> tuple[int, ...]:
        return tuple(getattr(c, name) for name in FIGURES)

    parts = ["<h2>Feeds</h2>", table(("feed", "last record (UTC)", *FIGURES), [
        (f, c.last_seen.strftime("%Y-%m-%d %H:%M:%S") if c.last_seen else "never", *figs(c))
        for f, c in sorted(st.feeds.items())], "feeds"),
        "<h2>Partners</h2>", table(("partner", "feeds", *FIGURES), [
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


def reconcile_form(partners: list[str], partner: str, start: datetime, end: datetime) -> str:
    opts = "".join(f'<option{" selected" if p == partner else ""}>{escape(p)}</option>'
                   for p in partners)
    return ('<form method="get" id="reconcile-form"><select name="partner">'  # noqa: S608 - HTML
            f'{opts}</select> from <input name="start" value="{escape(start.isoformat())}"> '
            f'to <input name="end" value="{escape(end.isoformat())}"> <button>show</button>'
            "</form>")


def reconcile_html(rec: Any, partner: str, start: datetime, end: datetime) -> str:
    """One partner's reconciliation (``services/core/audit/reconcile.py``): counts, CSV link,
    one row per record."""
    from services.core.audit.reconcile import OUTCOMES

    c = rec.counts
    outcomes = [o for o in OUTCOMES if o != "rejected"]
    q = urllib.parse.urlencode({"partner": partner, "start": start.isoformat(),
                                "end": end.isoformat()})
    return (table(("accepted", "rejected", *outcomes, "generalised"),
                  [(c["accepted"], c["rejected"], *[c[o] for o in outcomes], c["generalised"])],
                  "counts")
            + f'<p><a id="csv" href="/officer/reconcile.csv?{escape(q)}">CSV for the '
              "partner</a></p>"
            + table(("source_id", "feed", "outcome", "received", "delivered to", "generalised",
                     "withheld", "unrouted", "rejection"),
                    [(x.source_id, x.feed, x.outcome, x.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                      ", ".join(sorted(x.delivered_to)),
                      ", ".join(f"{k}:{v}" for k, v in sorted(x.generalised.items())),
                      x.withheld_cause or "", x.unrouted_reason or "", x.rejection_reasons)
                     for x in rec.rows], "records"))


def letters_html(letters: Iterable[Any]) -> str:
    rows = []
    for letter in letters:
        s = letter.summary()
        where = next((f"{k} {s[k]}" for k in ("line", "index", "offset") if k in s), "")
        rows.append((s["rejection_id"], s["rejected_at"], s["stage"], s["partner"], s["feed"],
                     s["source_id"] or "", where,
                     "; ".join(f"{p.get('pointer') or '/'}: {p.get('reason')}"
                               for p in s["problems"]),
                     ", ".join(str(x) for x in s["replayed"])))
    return ("<p>Metadata only: the original records stay sealed; replay them with "
            "<code>s115hub dlq replay</code> on the ingest host.</p>"
            + table(("id", "rejected at", "stage", "partner", "feed", "source_id", "position",
                     "why", "replayed as"), rows, "letters"))


def protocols_html(protocol_rows: Iterable[Any], today: date) -> str:
    rows = []
    for p in sorted(protocol_rows, key=lambda x: x.ref):
        link = Html(f'<a href="/officer/protocols/{urllib.parse.quote(p.ref)}">'
                    f"{escape(p.ref)}</a>")
        days = (p.review_by - today).days if p.review_by else ""
        rows.append((link, "LIVE" if p.live else "; ".join(p.reasons) or "not live",
                     p.review_by or "", days, p.retention_days or "", ", ".join(p.parties)))
    return table(("protocol", "state", "review by", "days to review", "retention days",
                  "parties"), rows, "protocols")


def credentials_html(holders: list[tuple[str, list[str], HashedTokenStore]]) -> str:
    """Each holder's credential ids (never a secret), with issue and revoke buttons."""
    parts = []
    for kind, ids, store in holders:
        entries = store.entries()
        rows = []
        for holder in ids:
            mine = sorted((k, e) for k, e in entries.items() if e["holder"] == holder)
            live = [k for k, e in mine if e["revoked_at"] is None]
            listing = "; ".join(f"{k} ({'revoked' if e['revoked_at'] else 'live'}, issued "
                                f"{str(e['created_at'])[:10]})" for k, e in mine) or "none"
            hidden = (f'<input type="hidden" name="kind" value="{kind}"><input type="hidden" '
                      f'name="holder" value="{escape(holder)}">')
            buttons = Html(
                f'<form class="inline" method="post" action="/officer/credentials/issue">'
                f'{hidden}<button class="issue" data-holder="{escape(holder)}">issue</button>'
                "</form>"
                + "".join(
                    f'<form class="inline" method="post" action="/officer/credentials/revoke">'
                    f'{hidden}<input type="hidden" name="token_id" value="{escape(k)}">'
                    f'<button class="revoke" data-token-id="{escape(k)}">revoke {escape(k)}'
                    "</button></form>" for k in live))
            rows.append((holder, listing, buttons))
        parts += [f"<h2>{kind.capitalize()}s</h2>",
                  table((kind, "credentials (ids only; secrets are never kept)", ""), rows,
                        f"{kind}-credentials")]
    return "".join(parts)
