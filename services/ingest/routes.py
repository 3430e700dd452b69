"""Ingest's publish routes, one APIRouter with the app's ``Hub`` injected (``HubDep``, hub.py).
Routes and guards only; the record logic is in service.py.

Order of the guards on every publish request, so each answer is the most useful one:
404 unknown feed, 401 bad key, 503 config not loaded, 403 feed not granted, 429 rate, 413 body,
400 not UTF-8, Idempotency-Key (replay, 409, 422), 503 broker unavailable, 413 batch, 422 records.
The first five are ``partner_for`` (a dependency, so they come before the body is read); the
rest are ``publish`` and ``run``, in that order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from schemas.feeds import FEEDS
from services.core.crypto.errors import CryptoError
from services.core.kafka.errors import BrokerUnavailable
from services.ingest.hub import Hub, HubDep
from services.ingest.limits import IdempotencyCache, IdempotencyConflict, retry_after_header
from services.ingest.openapi import Accepted, BatchResult, body_doc, ok_responses
from services.ingest.validation import Item, load_json, parse_csv, parse_ndjson

IDEMPOTENCY_KEY_MAX = 255
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="PartnerApiKey",
                              description="The partner's API key, issued by `s115hub partner add`."
                                          " Only its SHA-256 hash is stored by the hub.")
Handler = Callable[[str], Awaitable[tuple[int, Any]]]

router = APIRouter()


def partner_for(hub: HubDep,
                feed: str = Path(..., description="police, fire, health or council"),
                api_key: str | None = Security(api_key_header)) -> str:
    """The partner a request publishes for, after the guards that need no body."""
    if feed not in FEEDS:
        raise HTTPException(404, f"unknown feed {feed!r}; known feeds: {', '.join(FEEDS)}")
    partner = hub.credentials.authenticate(api_key) if api_key else None
    if partner is None:
        raise HTTPException(401, "missing, unknown or revoked API key",
                            headers={"WWW-Authenticate": "ApiKey"})
    county = hub.config.county
    if county is None:
        raise HTTPException(503, "configuration not loaded yet", headers=hub.retry_after)
    p = county.partner(partner)
    if p is None or feed not in p.feeds:
        raise HTTPException(403, f"partner {partner!r} may not publish to feed {feed!r}")
    wait = hub.limiter.take(partner, time.monotonic())
    if wait > 0:
        raise HTTPException(429, f"partner {partner!r} is over its limit of "
                                 f"{hub.settings.ingest_rate_per_partner:g} requests per second",
                            headers={"Retry-After": retry_after_header(wait)})
    return partner


Partner = Annotated[str, Depends(partner_for)]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key",
    description="Any unique string up to 255 characters. The same key with the same body "
                "returns the first answer (marked `Idempotent-Replayed: true`) without "
                "publishing again; with a different body it is refused with 422; while the first "
                "request is still running, 409.")]


async def read_body(hub: Hub, request: Request) -> bytes:
    limit = hub.settings.max_body_bytes
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


async def publish(hub: Hub, request: Request, partner: str, key: str | None,
                  handle: Handler) -> JSONResponse:
    """Read the body, honour Idempotency-Key, run ``handle(text) -> (status, body)``."""
    body = await read_body(hub, request)
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
                               content if status_done is not None else None, time.monotonic())


async def run(hub: Hub, partner: str, feed: str, items: list[Item], kind: str) -> Any:
    if len(items) > hub.settings.max_batch_records:
        raise HTTPException(413, f"batch of {len(items)} records is over the limit of "
                                 f"{hub.settings.max_batch_records}")
    try:
        await hub.ensure_broker(hub.ack_timeout)
        return await hub.require_service().ingest(partner, feed, items, kind)
    except BrokerUnavailable as exc:
        hub.broker_failed()
        raise HTTPException(503, f"{exc}; nothing in this request was acknowledged",
                            headers=hub.retry_after) from None
    except CryptoError as exc:
        raise HTTPException(503, f"records cannot be sealed: {exc}; nothing in this request "
                                 "was acknowledged", headers=hub.retry_after) from None


def batch_handler(hub: Hub, partner: str, feed: str, parse: Any, kind: str) -> Handler:
    async def handle(text: str) -> tuple[int, Any]:
        items = list(parse(text))
        if not items:
            return 422, {"detail": "the batch holds no records",
                         "errors": [{"pointer": "", "reason": "no records in the body"}]}
        return 200, (await run(hub, partner, feed, items, kind)).as_dict()
    return handle


@router.post("/v1/feeds/{feed}/records", status_code=202, response_model=Accepted,
             responses=ok_responses(202, "Accepted: the broker has the record."),
             openapi_extra=body_doc("application/json", "One record of the feed."),
             summary="Publish one record")
async def post_record(feed: str, request: Request, hub: HubDep, partner: Partner,
                      idempotency_key: IdempotencyKey = None) -> Any:
    async def handle(text: str) -> tuple[int, Any]:
        data, error = load_json(text)
        out = await run(hub, partner, feed, [Item(0, data=data, error=error,
                                                  raw=text if error else None)], "index")
        if out.rejected:
            r = out.rejected[0]
            return 422, {"detail": "record rejected", "rejection_id": r["rejection_id"],
                         "errors": r["errors"]}
        a = out.accepted[0]
        return 202, {"hub_record_id": a["hub_record_id"], "source_id": a["source_id"],
                     "duplicate": bool(a.get("duplicate"))}

    return await publish(hub, request, partner, idempotency_key, handle)


@router.post("/v1/feeds/{feed}/ndjson", response_model=BatchResult,
             responses=ok_responses(200, "Per-record results; accepted records are on the "
                                         "broker."),
             openapi_extra=body_doc("application/x-ndjson", "One JSON record per line."),
             summary="Publish a batch as NDJSON (per-record results by 0-based index)")
async def post_ndjson(feed: str, request: Request, hub: HubDep, partner: Partner,
                      idempotency_key: IdempotencyKey = None) -> Any:
    return await publish(hub, request, partner, idempotency_key,
                         batch_handler(hub, partner, feed, parse_ndjson, "index"))


@router.post("/v1/feeds/{feed}/csv", response_model=BatchResult,
             responses=ok_responses(200, "Per-record results; accepted records are on the "
                                         "broker."),
             openapi_extra=body_doc("text/csv", "A header line, then one record per line; "
                                                "location as lat and lon columns."),
             summary="Publish a batch as CSV (per-record results by line number)")
async def post_csv(feed: str, request: Request, hub: HubDep, partner: Partner,
                   idempotency_key: IdempotencyKey = None) -> Any:
    return await publish(hub, request, partner, idempotency_key,
                         batch_handler(hub, partner, feed, parse_csv, "line"))
