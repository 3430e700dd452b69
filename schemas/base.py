"""Field markers shared by every feed model.

A field is *personal* when it directly identifies a person (name, date of birth, address, contact
details, patient identifiers). Free text is marked separately: it is treated as personal because
anything can be written in it, and it is dropped unless a protocol allows scrubbed text.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PERSONAL: dict[str, Any] = {"x-personal": True}
FREE_TEXT: dict[str, Any] = {"x-personal": True, "x-free-text": True}


def personal(description: str, **kw: Any) -> Any:
    """A field that directly identifies a person."""
    return Field(default=None, description=description, json_schema_extra=PERSONAL, **kw)


def free_text(description: str, **kw: Any) -> Any:
    """Free text: may hold anything, so it is personal until scrubbed."""
    return Field(default=None, description=description, json_schema_extra=FREE_TEXT, **kw)


class FeedModel(BaseModel):
    """Base of the four feed models: unknown fields are refused, not silently kept."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _marked(model: type[BaseModel], key: str) -> frozenset[str]:
    return frozenset(
        name for name, f in model.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get(key)
    )


@cache
def personal_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of the fields marked personal (free text included)."""
    return _marked(model, "x-personal")


@cache
def free_text_fields(model: type[BaseModel]) -> frozenset[str]:
    return _marked(model, "x-free-text")
