"""The operational surface every service shares: /healthz, /readyz and /metrics, and running a
worker and that small HTTP server in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def add_ops_routes(app: FastAPI, registry: CollectorRegistry,
                   ready: Callable[[], tuple[bool, str]]) -> None:
    @app.get("/healthz", tags=["ops"], summary="Alive")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Connected to the broker and holding config")
    def readyz(response: Response) -> dict[str, str]:
        ok, why = ready()
        if not ok:
            response.status_code = 503
        return {"status": "ready" if ok else "not ready", "detail": why}

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def ops_app(title: str, registry: CollectorRegistry,
            ready: Callable[[], tuple[bool, str]]) -> FastAPI:
    app = FastAPI(title=title)
    add_ops_routes(app, registry, ready)
    return app


async def serve(app: FastAPI, host: str, port: int,
                worker: Callable[[asyncio.Event], Awaitable[None]] | None = None) -> None:
    """Serve ``app`` and run ``worker(stop)`` until SIGINT/SIGTERM; then stop both cleanly."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="on"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    srv = asyncio.create_task(server.serve())
    work = asyncio.create_task(worker(stop)) if worker else None
    waiters = [asyncio.create_task(stop.wait()), srv] + ([work] if work else [])
    done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    server.should_exit = True
    for t in (work, srv):
        if t is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    for t in done:
        if t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
