"""``free_text``: free text leaves the hub only through an allow-list, or not at all.

Parameters:

- ``mode``: ``drop`` (default: the text never leaves the hub), ``vocabulary`` or ``tags``.
- ``vocabulary`` (mode ``vocabulary``): one list ``id@version`` or a list of them, shipped in
  ``services/protocols/vocabularies``. Only words on a list are released; see
  ``free_text_vocabulary`` for what is replaced whatever the lists say.
- ``tagset`` (mode ``tags``): one tag set ``id@version``. The text is released as the sorted list
  of tags whose phrases occur in it, and nothing else.

``scrub`` (the old pattern deny-list) is refused: a deny-list cannot reach zero leaks on open-world
text. The record-aware pass it had survives inside ``vocabulary``, for typed placeholders only.
The lists' hashes are part of the protocol's signed digest (``signing.protocol_digest``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.base import free_text_fields
from schemas.feeds import FEEDS
from services.core.config.errors import ConfigError
from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_known,
    check_mapping,
)
from services.protocols.transforms.free_text_record import record_words
from services.protocols.transforms.free_text_tags import find_tags
from services.protocols.transforms.free_text_vocabulary import Lists, Release
from services.protocols.vocabularies import (
    NAMES_REF,
    check_ref,
    load_names,
    load_tagset,
    load_vocabulary,
)

MODES = ("drop", "vocabulary", "tags")


def vocabulary_refs(params: Mapping[str, Any]) -> list[str]:
    value = params.get("vocabulary")
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def list_refs(params: Mapping[str, Any]) -> list[str]:
    """Every shipped list a rule with these (valid) parameters reads: what the signature binds."""
    mode = params.get("mode", "drop")
    if mode == "vocabulary":
        return [*vocabulary_refs(params), NAMES_REF]
    if mode == "tags":
        return [params["tagset"]] if isinstance(params.get("tagset"), str) else []
    return []


def lists_for(refs: list[str]) -> Lists:
    return Lists.of([load_vocabulary(r) for r in refs], load_names())


class FreeText(Transform):
    name = "free_text"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("mode", "vocabulary", "tagset"), self.name)
        mode = params.get("mode", "drop")
        if mode == "scrub":
            raise ConfigError("mode 'scrub' is no longer a release mode: a pattern deny-list "
                              "cannot catch every name or number in free text; use "
                              "'vocabulary' (release only listed words) or 'tags' (release "
                              "only tags from a controlled list), or 'drop'", field="mode")
        if not isinstance(mode, str) or mode not in MODES:
            raise ConfigError(f"must be one of {', '.join(MODES)}; got {mode!r}", field="mode")
        if mode == "vocabulary":
            if "tagset" in params:
                raise ConfigError("'tagset' is for mode 'tags'", field="tagset")
            raw = params.get("vocabulary")
            refs = raw if isinstance(raw, list) else [] if raw is None else [raw]
            if not refs:
                raise ConfigError("mode 'vocabulary' needs 'vocabulary': id@version of a "
                                  "shipped vocabulary (e.g. incident-en@1)", field="vocabulary")
            for ref in refs:
                _checked(ref, ".txt", "vocabulary")
                load_vocabulary(ref)  # a malformed file fails here, at load time
        elif mode == "tags":
            if "vocabulary" in params:
                raise ConfigError("'vocabulary' is for mode 'vocabulary'", field="vocabulary")
            if "tagset" not in params:
                raise ConfigError("mode 'tags' needs 'tagset': id@version of a shipped tag "
                                  "set (e.g. mo-tags@1)", field="tagset")
            load_tagset(_checked(params["tagset"], ".yaml", "tagset"))
        elif "vocabulary" in params or "tagset" in params:
            raise ConfigError("mode 'drop' takes no list", field="mode")

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        mode = params.get("mode", "drop")
        if mode not in ("vocabulary", "tags") or not isinstance(value, str):
            return DROP
        if mode == "tags":
            return find_tags(value, load_tagset(str(params["tagset"])))
        lists = lists_for(vocabulary_refs(params))
        model = FEEDS.get(ctx.feed)
        skip = free_text_fields(model) if model is not None else frozenset()
        own = record_words(ctx.record, ctx.personal_fields, skip=skip, places=lists.places)
        return Release(lists, own).run(value)


def _checked(ref: object, suffix: str, param: str) -> str:
    try:
        return check_ref(ref, suffix)
    except ConfigError as exc:
        raise ConfigError(str(exc.args[0]), field=param) from None
