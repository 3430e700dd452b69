"""Ingest HTTP API: the front door partners integrate against. Routes only; logic in service.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from schemas.feeds import FEEDS
from services.core.config_follow import ConfigFollower
from services.core.config_state import ConfigState
from services.core.errors import BrokerUnavailable
from services.core.field_crypto import DataKeyStore
from services.core.kafka import make_producer
from services.core.keys import MasterKey
from services.core.metrics import ServiceMetrics
from services.core.ops import add_ops_routes
from services.core.settings import Settings
from services.core.topics import topics_for
from services.ingest.credentials import CredentialStore
from services.ingest.service import IngestService
from services.ingest.validation import Item, parse_csv, parse_ndjson

RECORD_ID_INFO = b"s115hub/record-id/v1"
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="The partner's API key, issued by `s115hub partner add`.")


class ErrorItem(BaseModel):
    pointer: str
    reason: str


class Rejected(BaseModel):
    detail: str
    rejection_id: str | None = None
    errors: list[ErrorItem]


class Accepted(BaseModel):
    hub_record_id: str
    source_id: str


class BatchResult(BaseModel):
    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    counts: dict[str, int]


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, unknown or revoked API key."},
    403: {"model": Problem, "description": "The partner may not publish to this feed."},
    404: {"model": Problem, "description": "Unknown feed."},
    413: {"model": Problem, "description": "Body or batch too large."},
    503: {"model": Problem, "description": "Broker unavailable; retry after Retry-After seconds. "
                                           "Nothing in the request was acknowledged."},
}


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
        self.follower = ConfigFollower(settings, self._on_config)
        self.producer: Any = None
        self.service: IngestService | None = None

    def _on_config(self, state: ConfigState) -> None:
        self.config = state

    def ready(self) -> tuple[bool, str]:
        if self.producer is None:
            return False, "not connected to the broker"
        if self.config.county is None:
            return False, "config not loaded"
        return True, "ok"


def make_app(settings: Settings) -> FastAPI:
    hub = Hub(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.follower.start()
        hub.producer = make_producer(settings, request_timeout_ms=10000)
        await hub.producer.start()
        hub.service = IngestService(topics=topics_for(settings), publisher=hub.producer,
                                    sealer=hub.sealer, record_id_key=hub.record_id_key,
                                    metrics=hub.metrics)
        try:
            yield
        finally:
            await hub.producer.stop()
            await hub.follower.stop()

    app = FastAPI(
        title="s115hub ingest",
        version="1",
        description="Publish incident records to the Community Safety Partnership hub. Records "
                    "are validated, personal fields are encrypted at rest, and nothing leaves the "
                    "hub without a live, signed Section 115 information sharing protocol.",
        lifespan=lifespan,
    )
    app.state.hub = hub
    add_ops_routes(app, hub.metrics.registry, hub.ready)

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
            raise HTTPException(503, "configuration not loaded yet", headers={"Retry-After": "5"})
        p = county.partner(partner)
        if p is None or feed not in p.feeds:
            raise HTTPException(403, f"partner {partner!r} may not publish to feed {feed!r}")
        return partner

    async def read_body(request: Request) -> str:
        if int(request.headers.get("content-length") or 0) > settings.max_body_bytes:
            raise HTTPException(413, f"body larger than {settings.max_body_bytes} bytes")
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            raise HTTPException(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HTTPException(400, f"body is not UTF-8: {exc.reason} at byte {exc.start}") \
                from None

    async def run(partner: str, feed: str, items: list[Item], kind: str) -> Any:
        if len(items) > settings.max_batch_records:
            raise HTTPException(413, f"batch of {len(items)} records is over the limit of "
                                     f"{settings.max_batch_records}")
        assert hub.service is not None
        try:
            return await hub.service.ingest(partner, feed, items, kind)
        except BrokerUnavailable as exc:
            raise HTTPException(503, f"{exc}; nothing in this request was acknowledged",
                                headers={"Retry-After": "5"}) from None

    @app.post("/v1/feeds/{feed}/records", status_code=202, response_model=Accepted,
              responses={**ERRORS, 422: {"model": Rejected, "description": "Invalid record."}},
              openapi_extra=_body_doc("application/json", "One record of the feed."),
              summary="Publish one record")
    async def post_record(feed: str, request: Request,
                          partner: str = Depends(partner_for)) -> Any:
        text = await read_body(request)
        try:
            item = Item(0, data=json.loads(text))
        except json.JSONDecodeError as exc:
            item = Item(0, error=f"not valid JSON: {exc.msg} at column {exc.colno}", raw=text)
        out = await run(partner, feed, [item], "index")
        if out.rejected:
            r = out.rejected[0]
            return JSONResponse(status_code=422, content={
                "detail": "record rejected", "rejection_id": r["rejection_id"],
                "errors": r["errors"]})
        a = out.accepted[0]
        return {"hub_record_id": a["hub_record_id"], "source_id": a["source_id"]}

    @app.post("/v1/feeds/{feed}/ndjson", response_model=BatchResult, responses=ERRORS,
              openapi_extra=_body_doc("application/x-ndjson", "One JSON record per line."),
              summary="Publish a batch as NDJSON (per-record results by 0-based index)")
    async def post_ndjson(feed: str, request: Request,
                          partner: str = Depends(partner_for)) -> Any:
        items = list(parse_ndjson(await read_body(request)))
        return (await run(partner, feed, items, "index")).as_dict()

    @app.post("/v1/feeds/{feed}/csv", response_model=BatchResult, responses=ERRORS,
              openapi_extra=_body_doc("text/csv", "A header line, then one record per line; "
                                                  "location as lat and lon columns."),
              summary="Publish a batch as CSV (per-record results by line number)")
    async def post_csv(feed: str, request: Request, partner: str = Depends(partner_for)) -> Any:
        items = list(parse_csv(await read_body(request)))
        return (await run(partner, feed, items, "line")).as_dict()

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
        doc["components"]["securitySchemes"] = doc["components"].get("securitySchemes", {})
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
