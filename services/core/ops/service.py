"""The operational surface every service shares: /healthz, /readyz and /metrics, and running a
worker and that small HTTP server in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.core.ops.metrics import ServiceMetrics
from services.core.ops.stop_signals import STOP_SIGNALS


@dataclass(frozen=True)
class OpsState:
    """What the ops routes read: the service's metrics and its readiness check."""
    registry: CollectorRegistry
    ready: Callable[[], tuple[bool, str]]


def _ops(request: Request) -> OpsState:
    ops: OpsState = request.app.state.ops
    return ops


Ops = Annotated[OpsState, Depends(_ops)]
ops_router = APIRouter(tags=["ops"])


@ops_router.get("/healthz", summary="Alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops_router.get("/readyz", summary="Connected to the broker and holding config")
def readyz(response: Response, ops: Ops) -> dict[str, str]:
    ok, why = ops.ready()
    if not ok:
        response.status_code = 503
    return {"status": "ready" if ok else "not ready", "detail": why}


@ops_router.get("/metrics", summary="Prometheus metrics")
def metrics(ops: Ops) -> Response:
    return Response(generate_latest(ops.registry), media_type=CONTENT_TYPE_LATEST)


def add_ops_routes(app: FastAPI, registry: CollectorRegistry,
                   ready: Callable[[], tuple[bool, str]]) -> None:
    app.state.ops = OpsState(registry, ready)
    app.include_router(ops_router)


def add_request_metrics(app: FastAPI, metrics: ServiceMetrics) -> None:
    """``s115hub_<service>_http_request_duration_seconds{route, method, status}``.

    Labelled by the route *template* (``/v1/feeds/{feed}/records``), never the concrete path,
    so a partner's ids in a URL cannot become label values; unmatched paths share one label.
    """
    hist = metrics.histogram("http_request_duration_seconds", "HTTP request handling time.",
                             ["route", "method", "status"])

    @app.middleware("http")
    async def _timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template not in ("/metrics", "/healthz", "/readyz"):
                hist.labels(template, request.method, str(status)).observe(
                    time.perf_counter() - t0)


def ops_app(title: str, registry: CollectorRegistry,
            ready: Callable[[], tuple[bool, str]]) -> FastAPI:
    # No CDN-loaded /docs or /redoc: the offline page instead (api_docs.py).
    app = FastAPI(title=title, docs_url=None, redoc_url=None)
    add_ops_routes(app, registry, ready)
    from services.core.ops.api_docs import add_docs

    add_docs(app)
    return app


async def serve(app: FastAPI, host: str, port: int,
                worker: Callable[[asyncio.Event], Coroutine[Any, Any, None]] | None = None
                ) -> None:
    """Serve ``app`` and run ``worker(stop)`` until SIGTERM, SIGINT or SIGHUP (see
    services/core/ops/stop_signals.py for why all three); then stop both cleanly."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on"))
    # The worker shares our SIGINT/SIGTERM handling, so uvicorn must not install its own.
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    srv = asyncio.create_task(server.serve())
    work = asyncio.create_task(worker(stop)) if worker else None
    waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait()), srv]
    waiters += [work] if work else []
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    server.should_exit = True
    for t in (work, srv):
        if t is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    for finished in done:
        exc = finished.exception()
        if exc is not None:
            raise exc
