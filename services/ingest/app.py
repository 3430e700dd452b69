"""Ingest HTTP API: the front door partners integrate against. ``make_app`` builds the app from
its parts: the state (``Hub``, hub.py), the publish routes and their guards (routes.py, an
APIRouter with the Hub injected), the documented shapes (openapi.py), the record logic
(service.py) and the Kafka inbound topics (inbound.py), which run in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.core.config.settings import Settings
from services.core.kafka.clients import make_producer
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import StageRunner, run_until_first_stops
from services.core.kafka.topics import topics_for
from services.core.ops.api_docs import add_docs
from services.core.ops.service import add_ops_routes, add_request_metrics
from services.ingest import routes
from services.ingest.hub import Hub, hub_of
from services.ingest.inbound import InboundStage
from services.ingest.openapi import add_feed_schemas
from services.ingest.records import RECORD_ID_INFO
from services.ingest.service import IngestService, time_limits


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    hub: Hub = app.state.hub
    settings = hub.settings
    stop = asyncio.Event()
    await hub.follower.start(stop)
    # Batches not acknowledged in time expire in the producer rather than being sent after
    # the partner has been told 503 (and has retried).
    hub.producer = make_producer(settings, request_timeout_ms=settings.ingest_ack_timeout_ms)
    await hub.producer.start()
    hub.service = IngestService(topics=topics_for(settings), publisher=hub.producer,
                                sealer=hub.sealer, record_id_key=hub.record_id_key,
                                metrics=hub.metrics, ack_timeout_s=hub.ack_timeout + 2,
                                dedupe_window=settings.ingest_dedupe_window,
                                rejection_bytes=settings.ingest_rejection_bytes_per_batch,
                                **time_limits(settings))
    with contextlib.suppress(BrokerUnavailable):
        await hub.ensure_broker(hub.ack_timeout)
    tasks: dict[str, asyncio.Task[Any]] = {}
    if hub.follower.task is not None:
        tasks["config"] = hub.follower.task
    if settings.ingest_inbound:
        stage = InboundStage(topics_for(settings), hub.require_service,
                             lambda: hub.config.county, hub.broker_failed)
        hub.inbound = StageRunner(settings, stage, hub.metrics, service="ingest",
                                  producer=hub.producer)
        tasks["inbound"] = asyncio.create_task(hub.inbound.run(stop))
    # A stage that stops (the config follower above all) makes ingest not ready and exit:
    # accepting records under configuration it no longer follows would not be fail-closed.
    watcher = asyncio.create_task(run_until_first_stops(stop, tasks))
    watcher.add_done_callback(hub.stage_stopped)
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(watcher, 10)
        await hub.producer.stop()
        await hub.follower.stop()


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code >= 400 and request.url.path.startswith("/v1/"):
        hub_of(request).m_denied.labels(str(exc.status_code)).inc()
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                        headers=dict(exc.headers or {}))


async def request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"pointer": "/" + "/".join(str(p) for p in e.get("loc", ())),
               "reason": str(e.get("msg", ""))} for e in exc.errors()]
    return JSONResponse({"detail": "request invalid", "errors": errors}, status_code=422)


def make_app(settings: Settings) -> FastAPI:
    hub = Hub(settings)
    app = FastAPI(
        title="s115hub ingest",
        version="1",
        description="Publish incident records to the Community Safety Partnership hub. Records "
                    "are validated, personal fields are encrypted at rest, and nothing leaves the "
                    "hub without a live, signed Section 115 information sharing protocol.\n\n"
                    "Authenticate with `X-API-Key`. A record is acknowledged (202/200) only "
                    "after the broker has it; 503 means nothing in the request was "
                    "acknowledged and it is safe to resend. Resending is always safe: the same "
                    "(partner, source_id) becomes the same `hub_record_id` and reaches each "
                    "tasking group once. Send `Idempotency-Key` to get the first answer back "
                    "for a retried request.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # their pages load from a CDN: add_docs serves one offline
    )
    add_docs(app)
    app.state.hub = hub
    add_ops_routes(app, hub.metrics.registry, hub.ready)
    add_request_metrics(app, hub.metrics)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.include_router(routes.router)
    add_feed_schemas(app)
    return app


__all__ = ["RECORD_ID_INFO", "Hub", "make_app"]
