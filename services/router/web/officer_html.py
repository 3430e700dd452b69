"""HTML of the officer page: small escaped building blocks, no template engine, no script.

Everything interpolated is escaped here; ``Html`` marks markup already built from escaped parts.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

STYLE = ("body{font-family:sans-serif;margin:1em 2em}nav a{margin-right:1em}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
         "padding:.15em .5em;text-align:left}.bad{color:#a00}.ok{color:#060}"
         "form.inline{display:inline}")
NAV = (("", "Status"), ("reconcile", "Reconciliation"), ("dead-letters", "Dead letters"),
       ("protocols", "Protocols"), ("credentials", "Credentials"), ("audit", "Audit"))


def page(title: str, body: str, *, officer: str | None = None) -> HTMLResponse:
    nav = ""
    if officer is not None:
        links = "".join(f'<a href="/officer/{p}">{escape(n)}</a>' for p, n in NAV)
        nav = (f"<nav>{links}<span>signed in as <b id=\"officer\">{escape(officer)}</b></span> "
               '<form class="inline" method="post" action="/officer/sign-out">'
               '<button id="sign-out">sign out</button></form></nav>')
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{STYLE}</style></head><body>{nav}<h1>{escape(title)}</h1>{body}"
        "</body></html>", headers={"Cache-Control": "no-store"})


def table(head: tuple[str, ...], rows: list[tuple[Any, ...]], table_id: str = "") -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Html) else escape(str(c))}</td>"
                                   for c in r) + "</tr>" for r in rows)
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


class Html(str):
    """Markup built here from escaped parts: inserted as is."""


SIGN_IN = ('<form method="post" action="/officer/sign-in"><label>Officer token '
            '<input type="password" name="token" id="token" autocomplete="off"></label> '
            '<button id="sign-in">Sign in</button></form>'
            "<p>Tokens are issued on the hub with <code>s115hub officer token issue NAME</code>."
            "</p>")


