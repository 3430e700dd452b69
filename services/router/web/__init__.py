"""Delivery over HTTP for tasking groups without Kafka clients (SSE stream, CSV/GeoJSON export)
and the group's web page, as a FastAPI sub-app the router mounts under ``/groups``."""

from services.router.web.app import GroupSource, make_web_app

__all__ = ["GroupSource", "make_web_app"]
