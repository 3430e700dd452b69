"""Delivery over HTTP for tasking groups without Kafka clients (SSE stream, CSV/GeoJSON export)
and the group's web page, as a FastAPI sub-app the router mounts under ``/groups``."""

from services.router.web.app import make_web_app
from services.router.web.group_web import GroupSource

__all__ = ["GroupSource", "make_web_app"]
