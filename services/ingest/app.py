"""Ingest HTTP API: the front door partners integrate against. Routes and guards only; the
record logic is in service.py, the Kafka inbound topics in inbound.py.

Order of the guards on every publish request, so each answer is the most useful one:
404 unknown feed, 401 bad key, 503 config not loaded, 403 feed not granted, 429 rate, 413 body,
400 not UTF-8, Idempotency-Key (replay, 409, 422), 503 broker unavailable, 413 batch, 422 records.

Over 400 lines because every publish route's guards are kept in one place so their order can be
read top to bottom.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from schemas.feeds import FEEDS
from services.core.config.follow import ConfigFollower
from services.core.config.settings import Settings
from services.core.config.state import ConfigState
from services.core.crypto.errors import CryptoError
from services.core.crypto.fields import DataKeyStore
from services.core.crypto.keys import MasterKey
from services.core.kafka.clients import ensure_topics, make_producer
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import StageRunner, run_until_first_stops
from services.core.kafka.topics import FEED_NAMES, TopicSpec, topic_specs, topics_for
from services.core.ops.api_docs import add_docs
from services.core.ops.metrics import ServiceMetrics
from services.core.ops.service import add_ops_routes, add_request_metrics
from services.ingest.credentials import CredentialStore
from services.ingest.inbound import InboundStage
from services.ingest.limits import (
    IdempotencyCache,
    IdempotencyConflict,
    RateLimiter,
    retry_after_header,
)
from services.ingest.records import RECORD_ID_INFO
from services.ingest.service import IngestService, time_limits
from services.ingest.validation import Item, load_json, parse_csv, parse_ndjson

log = logging.getLogger(__name__)

IDEMPOTENCY_KEY_MAX = 255
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="PartnerApiKey",
                              description="The partner's API key, issued by `s115hub partner add`."
                                          " Only its SHA-256 hash is stored by the hub.")


class ErrorItem(BaseModel):
    pointer: str = Field(description="RFC 6901 JSON pointer of the offending field; empty for "
                                     "the record as a whole.")
    reason: str


class Problem(BaseModel):
    """Every error the API returns has this shape."""

    detail: str
    rejection_id: str | None = Field(default=None, description="Id of the dead letter on "
                                                               "s115.rejected, for the officer.")
    errors: list[ErrorItem] = Field(default_factory=list)


class Accepted(BaseModel):
    hub_record_id: str
    source_id: str
    duplicate: bool = Field(default=False, description="An identical resend of a record the hub "
                                                       "already has; not written again.")


class AcceptedItem(BaseModel):
    index: int | None = None
    line: int | None = None
    hub_record_id: str
    source_id: str
    duplicate: bool = False


class RejectedItem(BaseModel):
    index: int | None = Field(default=None, description="NDJSON: 0-based record index.")
    line: int | None = Field(default=None, description="CSV: line number (header is line 1).")
    source_id: str | None = Field(default=None, description="Your own reference, when the "
                                  "record carried a usable one.")
    rejection_id: str
    errors: list[ErrorItem]


class BatchResult(BaseModel):
    accepted: list[AcceptedItem]
    rejected: list[RejectedItem]
    counts: dict[str, int]


def _err(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description}


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer"}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _err("The body is not UTF-8."),
    401: {**_err("Missing, unknown or revoked API key."),
          "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
    403: _err("The partner may not publish to this feed."),
    404: _err("Unknown feed."),
    409: _err("A request with the same Idempotency-Key is still being processed."),
    413: _err("Body larger than the limit, or more records in the batch than the limit."),
    422: _err("Record rejected (pointers and reasons in `errors`), empty batch, or an "
              "Idempotency-Key reused for a different request."),
    429: {**_err("Over the partner's request rate; retry after Retry-After seconds."),
          "headers": RETRY_AFTER},
    503: {**_err("Broker unavailable or configuration not loaded; retry after Retry-After "
                 "seconds. Nothing in the request was acknowledged."), "headers": RETRY_AFTER},
}


REPLAYED_HEADER = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer to an earlier request with the same "
                   "Idempotency-Key and body; nothing was published again.",
    "schema": {"type": "string", "enum": ["true"]}}}


def _ok(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {**ERRORS, status: {"description": description, "headers": REPLAYED_HEADER}}


def _body_doc(media: str, feed_note: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"} if media != "application/json" else {
        "oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in FEEDS.values()]}
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}},
                            "description": feed_note}}


class Hub:
    """What the routes need, built once in make_app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ServiceMetrics("ingest")
        master = MasterKey.from_env_or_file(
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.resolved_master_key_file())
        self.sealer = DataKeyStore(settings.state_dir / "datakeys", master.kek())
        self.record_id_key = master.derive(RECORD_ID_INFO)
        self.credentials = CredentialStore(settings.state_dir / "partners.json")
        self.config = ConfigState()
        self.follower = ConfigFollower(settings, self._on_config, metrics=self.metrics,
                                       service="ingest")
        self.inbound: StageRunner | None = None
        self.stopped: str | None = None
        self.limiter = RateLimiter(settings.ingest_rate_per_partner, settings.ingest_rate_burst)
        self.idempotency = IdempotencyCache(settings.ingest_idempotency_entries,
                                            settings.ingest_idempotency_ttl_s,
                                            settings.ingest_idempotency_bytes_per_partner)
        self.producer: Any = None
        self.service: IngestService | None = None
        #: Set after a broker failure: the broker may have restarted empty (the embedded broker
        #: keeps topics in memory), so topics are ensured before the next write.
        self.needs_provision = True
        self._provisioning: asyncio.Future[list[str]] | None = None
        self.m_denied = self.metrics.counter(
            "requests_denied_total", "Publish requests refused before validation, by status.",
            ["status"])
        self.m_unavailable = self.metrics.counter(
            "broker_unavailable_total", "Requests or inbound batches answered 503 / retried "
                                        "because the broker did not acknowledge.")

    def _on_config(self, state: ConfigState) -> None:
        self.config = state

    def ready(self) -> tuple[bool, str]:
        if self.producer is None:
            return False, "not connected to the broker"
        if self.stopped is not None:
            return False, self.stopped
        ok, why = self.follower.alive()
        if not ok:
            return ok, why
        if self.config.county is None:
            return False, "config not loaded"
        return True, "ok"

    def stage_stopped(self, watcher: asyncio.Task[None]) -> None:
        if watcher.cancelled() or watcher.exception() is None:
            return
        self.stopped = f"stopped: {watcher.exception()}"
        log.error("ingest: %s; exiting", self.stopped)
        os.kill(os.getpid(), signal.SIGTERM)

    def topic_specs(self) -> list[TopicSpec]:
        county = self.config.county
        partners = [p.id for p in county.partners] if county else []
        return topic_specs(self.settings, [], partners)

    def broker_failed(self) -> None:
        self.needs_provision = True
        self.m_unavailable.inc()

    async def ensure_broker(self, timeout: float) -> None:
        """Make sure ingest's topics exist (after start-up or a broker failure), or raise
        BrokerUnavailable. One provisioning runs at a time; callers share it."""
        if not self.needs_provision:
            return
        if self._provisioning is None or self._provisioning.done():
            self._provisioning = asyncio.ensure_future(
                asyncio.to_thread(ensure_topics, self.settings, self.topic_specs()))
        try:
            await asyncio.wait_for(asyncio.shield(self._provisioning), timeout)
        except Exception as exc:
            raise BrokerUnavailable(f"the broker is unavailable ({type(exc).__name__}: {exc})") \
                from exc
        self.needs_provision = False


def make_app(settings: Settings) -> FastAPI:
    hub = Hub(settings)
    ack_timeout = settings.ingest_ack_timeout_ms / 1000
    retry_after = {"Retry-After": str(settings.ingest_retry_after_s)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await hub.follower.start(stop)
        # Batches not acknowledged in time expire in the producer rather than being sent after
        # the partner has been told 503 (and has retried).
        hub.producer = make_producer(settings, request_timeout_ms=settings.ingest_ack_timeout_ms)
        await hub.producer.start()
        hub.service = IngestService(topics=topics_for(settings), publisher=hub.producer,
                                    sealer=hub.sealer, record_id_key=hub.record_id_key,
                                    metrics=hub.metrics, ack_timeout_s=ack_timeout + 2,
                                    dedupe_window=settings.ingest_dedupe_window,
                                    rejection_bytes=settings.ingest_rejection_bytes_per_batch,
                                    **time_limits(settings))
        with contextlib.suppress(BrokerUnavailable):
            await hub.ensure_broker(ack_timeout)
        tasks: dict[str, asyncio.Task[Any]] = {}
        if hub.follower.task is not None:
            tasks["config"] = hub.follower.task
        if settings.ingest_inbound:
            stage = InboundStage(topics_for(settings), lambda: _service(),
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

    def _service() -> IngestService:
        assert hub.service is not None
        return hub.service

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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code >= 400 and request.url.path.startswith("/v1/"):
            hub.m_denied.labels(str(exc.status_code)).inc()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"pointer": "/" + "/".join(str(p) for p in e.get("loc", ())),
                   "reason": str(e.get("msg", ""))} for e in exc.errors()]
        return JSONResponse({"detail": "request invalid", "errors": errors}, status_code=422)

    def partner_for(feed: str = Path(..., description="police, fire, health or council"),
                    api_key: str | None = Security(api_key_header)) -> str:
        if feed not in FEEDS:
            raise HTTPException(404, f"unknown feed {feed!r}; known feeds: {', '.join(FEEDS)}")
        partner = hub.credentials.authenticate(api_key) if api_key else None
        if partner is None:
            raise HTTPException(401, "missing, unknown or revoked API key",
                                headers={"WWW-Authenticate": "ApiKey"})
        county = hub.config.county
        if county is None:
            raise HTTPException(503, "configuration not loaded yet", headers=retry_after)
        p = county.partner(partner)
        if p is None or feed not in p.feeds:
            raise HTTPException(403, f"partner {partner!r} may not publish to feed {feed!r}")
        wait = hub.limiter.take(partner, time.monotonic())
        if wait > 0:
            raise HTTPException(429, f"partner {partner!r} is over its limit of "
                                     f"{settings.ingest_rate_per_partner:g} requests per second",
                                headers={"Retry-After": retry_after_header(wait)})
        return partner

    async def read_body(request: Request) -> bytes:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"body of {declared} bytes is over the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def decode(body: bytes) -> str:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, f"body is not UTF-8: {exc.reason} at byte {exc.start}") \
                from None

    async def publish(request: Request, partner: str, feed: str, key: str | None,
                      handle: Any) -> JSONResponse:
        """Read the body, honour Idempotency-Key, run ``handle(text) -> (status, body)``."""
        body = await read_body(request)
        text = decode(body)
        if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            raise HTTPException(422, f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} "
                                     "characters")
        if key is None:
            status, content = await handle(text)
            return JSONResponse(content, status_code=status)
        fingerprint = IdempotencyCache.fingerprint("POST", request.url.path, body)
        try:
            stored = hub.idempotency.begin(partner, key, fingerprint, time.monotonic())
        except IdempotencyConflict as exc:
            raise HTTPException(exc.status, str(exc)) from None
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status,
                                headers={"Idempotent-Replayed": "true"})
        status_done: int | None = None
        try:
            status, content = await handle(text)
            status_done = status
            return JSONResponse(content, status_code=status)
        finally:
            hub.idempotency.finish(partner, key, status_done,
                                   content if status_done is not None else None,
                                   time.monotonic())

    async def run(partner: str, feed: str, items: list[Item], kind: str) -> Any:
        if len(items) > settings.max_batch_records:
            raise HTTPException(413, f"batch of {len(items)} records is over the limit of "
                                     f"{settings.max_batch_records}")
        try:
            await hub.ensure_broker(ack_timeout)
            return await _service().ingest(partner, feed, items, kind)
        except BrokerUnavailable as exc:
            hub.broker_failed()
            raise HTTPException(503, f"{exc}; nothing in this request was acknowledged",
                                headers=retry_after) from None
        except CryptoError as exc:
            raise HTTPException(503, f"records cannot be sealed: {exc}; nothing in this request "
                                     "was acknowledged", headers=retry_after) from None

    idem_header = Header(None, alias="Idempotency-Key",
                         description="Any unique string up to 255 characters. The same key with "
                                     "the same body returns the first answer (marked "
                                     "`Idempotent-Replayed: true`) without publishing again; "
                                     "with a different body it is refused with 422; while the "
                                     "first request is still running, 409.")

    @app.post("/v1/feeds/{feed}/records", status_code=202, response_model=Accepted,
              responses=_ok(202, "Accepted: the broker has the record."),
              openapi_extra=_body_doc("application/json", "One record of the "
                                                                            "feed."),
              summary="Publish one record")
    async def post_record(feed: str, request: Request, partner: str = Depends(partner_for),
                          idempotency_key: str | None = idem_header) -> Any:
        async def handle(text: str) -> tuple[int, Any]:
            data, error = load_json(text)
            out = await run(partner, feed, [Item(0, data=data, error=error,
                                                 raw=text if error else None)], "index")
            if out.rejected:
                r = out.rejected[0]
                return 422, {"detail": "record rejected", "rejection_id": r["rejection_id"],
                             "errors": r["errors"]}
            a = out.accepted[0]
            return 202, {"hub_record_id": a["hub_record_id"], "source_id": a["source_id"],
                         "duplicate": bool(a.get("duplicate"))}

        return await publish(request, partner, feed, idempotency_key, handle)

    def batch_handler(partner: str, feed: str, parse: Any, kind: str) -> Any:
        async def handle(text: str) -> tuple[int, Any]:
            items = list(parse(text))
            if not items:
                return 422, {"detail": "the batch holds no records",
                             "errors": [{"pointer": "", "reason": "no records in the body"}]}
            return 200, (await run(partner, feed, items, kind)).as_dict()
        return handle

    @app.post("/v1/feeds/{feed}/ndjson", response_model=BatchResult,
              responses=_ok(200, "Per-record results; accepted records are on the broker."),
              openapi_extra=_body_doc("application/x-ndjson", "One JSON record per line."),
              summary="Publish a batch as NDJSON (per-record results by 0-based index)")
    async def post_ndjson(feed: str, request: Request, partner: str = Depends(partner_for),
                          idempotency_key: str | None = idem_header) -> Any:
        return await publish(request, partner, feed, idempotency_key,
                             batch_handler(partner, feed, parse_ndjson, "index"))

    @app.post("/v1/feeds/{feed}/csv", response_model=BatchResult,
              responses=_ok(200, "Per-record results; accepted records are on the broker."),
              openapi_extra=_body_doc("text/csv", "A header line, then one record per line; "
                                                  "location as lat and lon columns."),
              summary="Publish a batch as CSV (per-record results by line number)")
    async def post_csv(feed: str, request: Request, partner: str = Depends(partner_for),
                       idempotency_key: str | None = idem_header) -> Any:
        return await publish(request, partner, feed, idempotency_key,
                             batch_handler(partner, feed, parse_csv, "line"))

    _add_feed_schemas(app)
    return app


def _add_feed_schemas(app: FastAPI) -> None:
    """Put the feed models into the OpenAPI components the request bodies refer to."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = original()
        comps = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in FEEDS.values():
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schema.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps[model.__name__] = schema
        for path in doc.get("paths", {}).values():
            for op in path.values():
                for param in op.get("parameters", []):
                    if param.get("name") == "feed" and param.get("in") == "path":
                        param["schema"] = {"type": "string", "enum": list(FEED_NAMES),
                                           "title": "Feed"}
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["RECORD_ID_INFO", "Hub", "make_app"]
