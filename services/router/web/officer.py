"""The officer page (issue 16): status, reconciliation, dead letters, protocols with their review
dates, partner and group credentials (issue, revoke) and audit verification, beside the group
pages in the router, for signed-in officers only, every action put on the audit chain.

Why here: the router already serves the group pages and is the audit chain's writer, and
everything the page shows is read from durable topics (``services/core/ops/durable.py``) or the
hashed credential files in the state directory. The router never sees personal data, and neither
does this page: dead letters show their metadata, never the sealed original; reconciliation
shows ids, groups and outcomes.

Access: an officer token (``s115hub officer token issue NAME``; hash only in
``officer-tokens.json``) is typed into the sign-in form once and kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/officer``. Every request re-checks it against the file, so a
revoked token is refused at once. State-changing requests are POSTs, and a request whose
``Origin`` is another site is refused (the cookie's SameSite=Strict already withholds it there).

Auditing: each page view and each action is a ``officer.signed_in`` or ``officer.action`` config
fact (actor ``<officer>@officer-page``), published *before* a view is shown and right after a
change is made; if the broker does not take it, the page says so and shows nothing further.

Layout: the state, sign-in and audit in officer_state.py (``OfficerPage``, injected into each
route as a dependency), the routes in officer_routes.py, the views' HTML in officer_views.py and
officer_html.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from services.core.config.settings import Settings
from services.router.web.officer_routes import router
from services.router.web.officer_state import COOKIE, OfficerPage

PREFIX = "/officer"  # the pages' links, redirects and cookie path name it


def add_officer_page(app: FastAPI, settings: Settings,
                     publish: Callable[[list[dict[str, Any]]], Any] | None = None
                     ) -> OfficerPage:
    """Serve the officer page from ``app`` under ``/officer``. ``publish`` puts audit facts on
    the chain (default: the hub's audit topic)."""
    page = OfficerPage(settings, publish)
    app.state.officer = page
    app.include_router(router, prefix=PREFIX)
    return page


__all__ = ["COOKIE", "PREFIX", "OfficerPage", "add_officer_page"]
