"""The ingest API's documented shapes: response models, the error table every publish route
shares, the request-body docs and the feed models in the OpenAPI document (routes.py, app.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from schemas.feeds import FEEDS
from services.core.kafka.topics import FEED_NAMES


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


def ok_responses(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {**ERRORS, status: {"description": description, "headers": REPLAYED_HEADER}}


def body_doc(media: str, feed_note: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"} if media != "application/json" else {
        "oneOf": [{"$ref": f"#/components/schemas/{m.__name__}"} for m in FEEDS.values()]}
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}},
                            "description": feed_note}}




def add_feed_schemas(app: FastAPI) -> None:
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


