"""Delivery over HTTP for tasking groups without Kafka clients, and the group's web page.

Mounted by the router under ``/groups`` (``make_web_app``). The state and the dependencies that
inject it and the caller's authorisation are in group_web.py; the routes are APIRouter modules:
group_routes.py (page, map, week tally, live stream, exports) and page_routes.py (the page's
summary, trend, records and tasking pack).

The page takes ``?token=`` once, sets an HttpOnly, SameSite=Strict cookie scoped to the group's
path and redirects to the bare URL, so the token does not stay in the address bar or history;
without a token it shows a form.
"""

from __future__ import annotations

from fastapi import FastAPI

from services.core.config.settings import Settings
from services.core.ops.metrics import ServiceMetrics
from services.router.web import group_routes, page_routes
from services.router.web.access_audit import FactSink
from services.router.web.docs import add_docs
from services.router.web.group_web import GroupSource, GroupWeb


def make_web_app(settings: Settings, source: GroupSource, metrics: ServiceMetrics, *,
                 audit_sink: FactSink | None = None) -> FastAPI:
    app = FastAPI(title="s115hub: delivery to tasking groups",
                  description="Live stream (server-sent events), export, the group's web page and "
                              "its tasking pack. Every route needs a member's own token "
                              "(`s115hub group member add`), sent as `Authorization: Bearer`; "
                              "page views, streams, exports, record lists and packs are audited "
                              "by member. See docs/api.md.",
                  docs_url=None, redoc_url=None)
    app.state.web = GroupWeb(settings, source, metrics, audit_sink)
    app.include_router(page_routes.router)
    add_docs(app)
    app.include_router(group_routes.router)
    return app
