"""The information sharing protocol: the signed document that allows a disclosure.

A protocol says who discloses (partners), who receives (tasking groups), why (purpose and lawful
basis) and, feed by feed, what each released field looks like. It is deliberately an allow-list:
**a field the protocol does not name is dropped**, so a partner adding a column to its feed cannot
widen a disclosure without a new, re-signed protocol.

YAML form (one document per file)::

    id: police-district            # slug; with version it forms the ref "police-district@1"
    version: 1
    title: Police incidents for district hot-spot tasking
    disclosers: [herts-police]
    recipients: [grp-watford, grp-herts-county]
    purpose: >-
      Hot-spot tasking ...
    lawful_basis: ["Crime and Disorder Act 1998 s115", "Crime and Disorder Act 1998 s17A"]
    feeds:
      police:
        fields:
          category: keep                         # bare transform name
          occurred_at: {transform: time, to: hour}   # or a mapping: transform + its params
          victim_name:
            transform: pseudonymise
            with: [victim_dob]
          summary: {transform: free_text, mode: tags, tagset: mo-tags@1}
          # free_text modes: drop (default) | vocabulary (vocabulary: incident-en@1 or a list
          # of id@version) | tags (tagset: id@version); 'scrub' is refused. The lists' SHA-256
          # hashes are signed with the document (see signing.protocol_digest).
    quasi_identifiers: [occurred_at, location]   # released field names the risk gate counts
    k: 3
    suppress_below: 5
    retention_days: 365
    valid_from: 2026-01-01
    valid_until: 2027-12-31
    review_by: 2027-06-30
    signatures: []                               # added by signing.sign_protocol

Everything that can be checked without data is checked at load time, so a bad protocol fails when
an officer loads it, with file, line and field, not when the first record arrives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from schemas.base import personal_fields
from schemas.feeds import FEEDS
from services.core.config.errors import ConfigError
from services.core.config.yamlconf import line_of, parse_text

SLUG = r"^[a-z0-9][a-z0-9._-]*$"
_PARTY = r"^[a-z0-9][a-z0-9-]*$"  # the county file's id pattern for partners and groups
_B64 = r"^[A-Za-z0-9+/]+={0,2}$"

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    """One released field: a transform name and its parameters.

    Written either as a bare name (``drop``) or a mapping (``{transform: time, to: hour}``); both
    are stored, and dumped, as the flat mapping so the signed digest does not depend on how the
    officer happened to write it.
    """

    transform: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"transform": data, "params": {}}
        if isinstance(data, Mapping):
            if set(data) == {"transform", "params"} and isinstance(data["params"], Mapping):
                return data  # already in stored form (Python construction)
            if "transform" not in data:
                raise ValueError("a field rule mapping needs a 'transform' key")
            rest = {k: v for k, v in data.items() if k != "transform"}
            return {"transform": data["transform"], "params": rest}
        raise ValueError("a field rule is a transform name or a mapping with 'transform'")

    @model_serializer(mode="plain")
    def _flat(self) -> dict[str, Any]:
        return {"transform": self.transform, **self.params}


class FeedRules(_Strict):
    fields: dict[str, FieldRule] = Field(min_length=1)


class Signature(_Strict):
    party: str = Field(pattern=_PARTY)
    officer: str = Field(min_length=1, max_length=200)
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str = Field(pattern=_B64, description="Base64 Ed25519 signature.")


class Protocol(_Strict):
    id: str = Field(pattern=SLUG, max_length=64)
    version: int = Field(ge=1)
    title: str = Field(min_length=1)
    disclosers: list[str] = Field(min_length=1)
    recipients: list[str] = Field(min_length=1)
    purpose: str = Field(min_length=1)
    lawful_basis: list[str] = Field(min_length=1)
    feeds: dict[str, FeedRules] = Field(min_length=1)
    quasi_identifiers: list[str] = Field(default_factory=list)
    k: int = Field(ge=2)
    suppress_below: int = Field(ge=1, description="Published counts below this are shown '<N'.")
    #: Streaming anonymisation: how long the risk gate may hold a record whose ward cell has not
    #: reached k yet, before it gives up the ward. Hours, not days: tasking meets every few weeks
    #: but alerts are live. None (the default, and absent from the signed digest) holds nothing.
    hold_hours: float | None = Field(default=None, gt=0, le=24)
    #: Hot-spot windows of this protocol's records stay open this long past their end for late
    #: records (a daily batch, an upload after an outage). None (the default, and absent from the
    #: signed digest) is the router's default of 48 hours. At most a week: held windows are state.
    allowed_lateness_hours: float | None = Field(default=None, gt=0, le=168)
    retention_days: int = Field(ge=1)
    valid_from: date
    valid_until: date
    review_by: date
    signatures: list[Signature] = Field(default_factory=list)

    @field_validator("disclosers", "recipients")
    @classmethod
    def _party_ids(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(_PARTY, p):
                raise ValueError(f"{p!r} is not a partner or group id")
        if len(set(v)) != len(v):
            raise ValueError("ids must not repeat")
        return v

    @field_validator("lawful_basis")
    @classmethod
    def _basis_not_blank(cls, v: list[str]) -> list[str]:
        if any(not b.strip() for b in v):
            raise ValueError("a lawful basis must not be blank")
        return v

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        # ConfigError is not a ValueError, so pydantic lets it through with our file:line intact.
        ctx = info.context or {}
        for loc, message in _problems(self):
            raise ConfigError(message, file=ctx.get("source"),
                              line=line_of(ctx.get("node"), loc),
                              field=".".join(str(p) for p in loc))
        return self

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def parties(self) -> tuple[str, ...]:
        """Everyone who must sign: disclosers, then recipients."""
        return tuple(dict.fromkeys([*self.disclosers, *self.recipients]))

    def list_hashes(self) -> dict[str, str]:
        """id@version -> SHA-256 of every shipped word list or tag set the free-text rules read.

        A list that is no longer shipped hashes as "missing": the signature then fails rather
        than the protocol silently releasing through another list."""
        from services.protocols.transforms.free_text import list_refs
        from services.protocols.vocabularies import sha256_of

        refs = sorted({ref for rules in self.feeds.values() for rule in rules.fields.values()
                       if rule.transform == "free_text" for ref in list_refs(rule.params)})
        out: dict[str, str] = {}
        for ref in refs:
            try:
                out[ref] = sha256_of(ref)
            except ConfigError:
                out[ref] = "missing"
        return out

    def released_fields(self, feed: str) -> frozenset[str]:
        """Fields of ``feed`` that leave the hub (named and not dropped)."""
        rules = self.feeds.get(feed)
        if rules is None:
            return frozenset()
        return frozenset(f for f, r in rules.fields.items() if r.transform != "drop")


def _problems(p: Protocol) -> list[tuple[Loc, str]]:
    """Every semantic problem, in document order (the first one is reported)."""
    # Imported here: the transform registry imports feed schemas and may grow heavy dependencies;
    # the protocol model itself should stay importable for tooling that only reads documents.
    from services.protocols.transforms import get_transform

    out: list[tuple[Loc, str]] = []
    for feed, rules in p.feeds.items():
        model = FEEDS.get(feed)
        if model is None:
            out.append((("feeds", feed), f"unknown feed {feed!r} (known: {', '.join(FEEDS)})"))
            continue
        personal = personal_fields(model)
        for name, rule in rules.fields.items():
            loc: Loc = ("feeds", feed, "fields", name)
            if name not in model.model_fields:
                out.append((loc, f"feed {feed!r} has no field {name!r}"))
                continue
            try:
                transform = get_transform(rule.transform)
            except ConfigError as exc:
                out.append(((*loc, "transform"), _bare(exc)))
                continue
            try:
                transform.validate(rule.params)
            except ConfigError as exc:
                out.append(((*loc, exc.field) if exc.field else loc, _bare(exc)))
                continue
            if name in personal and not transform.applies_to_personal:
                out.append((loc, f"{name!r} is personal and may not be released with "
                                 f"{rule.transform!r}; pseudonymise, generalise or drop it"))
                continue
            with_ = rule.params.get("with")
            if isinstance(with_, list):
                for i, other in enumerate(with_):
                    if other not in model.model_fields:
                        out.append(((*loc, "with", i), f"feed {feed!r} has no field {other!r}"))
    released = set().union(*(p.released_fields(f) for f in p.feeds))
    for i, qi in enumerate(p.quasi_identifiers):
        if qi not in released:
            out.append((("quasi_identifiers", i),
                        f"quasi-identifier {qi!r} is not a released field"))
    if p.valid_until < p.valid_from:
        out.append((("valid_until",), f"valid_until {p.valid_until} is before valid_from "
                                      f"{p.valid_from}"))
    parties = set(p.parties)
    seen: set[str] = set()
    for i, sig in enumerate(p.signatures):
        if sig.party not in parties:
            out.append((("signatures", i, "party"), f"{sig.party!r} is not a party"))
        elif sig.party in seen:
            out.append((("signatures", i, "party"), f"{sig.party!r} has signed twice"))
        seen.add(sig.party)
    return out


def _bare(exc: ConfigError) -> str:
    """The message without the 'file:line: ' prefix and ' (field x)' suffix ConfigError adds."""
    text = str(exc.args[0]) if exc.args else str(exc)
    where = ":".join(str(x) for x in (exc.file, exc.line) if x is not None)
    if where and text.startswith(f"{where}: "):
        text = text[len(where) + 2:]
    if exc.field and text.endswith(f" (field {exc.field})"):
        text = text[: -len(f" (field {exc.field})")]
    return text


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> tuple[Loc, int, str] | None:
    """YAML keeps the last of two equal keys silently; in a protocol that hides a rule."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            key = str(k.value)
            if key in seen:
                return (*loc, key), k.start_mark.line + 1, f"{key!r} is given twice"
            seen.add(key)
            found = _duplicate_keys(v, (*loc, key))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_keys(v, (*loc, i))
            if found:
                return found
    return None


def parse_protocol(text: str, source: str = "<text>") -> Protocol:
    """Parse and check one protocol document; every error is a ConfigError with file and line."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None  # parse_text reports the syntax error with its line
    dup = _duplicate_keys(node)
    if dup is not None:
        loc, line, message = dup
        raise ConfigError(message, file=source, line=line, field=".".join(map(str, loc)))
    return parse_text(Protocol, text, source, context={"source": source, "node": node})


def load_protocol(path: str | Path) -> Protocol:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read protocol: {exc}", file=str(path)) from None
    return parse_protocol(text, str(path))
