"""A signed protocol as a document the information-governance board reads (issue 16).

The YAML is what the hub enforces; this renders the same text, field by field, in words: the
parties (with the names the county file gives them), purpose, lawful basis, what each field of
each feed becomes, the risk-gate terms, the dates, and every signature with whether it verifies.
Nothing is paraphrased that the hub does not enforce: the field sentences come from the rule's
transform and parameters, and the fields the protocol does not name are listed as never leaving
the hub, because that is what the allow-list does.

Pure: Markdown and HTML strings, no files, no broker.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from schemas.base import personal_fields
from schemas.feeds import FEEDS
from services.protocols.protocol import FieldRule, Protocol

__all__ = ["DocumentContext", "describe_rule", "render_html", "render_markdown"]

_TIME = {"hour": "the start of its hour (UTC)", "day": "its day (UTC)",
         "week": "the Monday of its week", "month": "its month"}
_LOCATION = {"ward": "the ward code only (no point)", "district": "the district code only",
             "ward_centre": "the ward's representative point, not the incident's",
             "snap": "the nearest point of a fixed ~200 m lattice (police.uk-like)"}


@dataclass
class DocumentContext:
    """What the hub knows beyond the document: display names and officers of the parties
    (county file) and, per signing party, whether its signature verifies."""

    names: Mapping[str, str] = field(default_factory=dict)
    officers: Mapping[str, str] = field(default_factory=dict)
    verified: Mapping[str, str] | None = None  # party -> "valid" or the problem
    today: date | None = None
    status: str | None = None  # "LIVE" or why not


def describe_rule(rule: FieldRule) -> str:
    """One sentence: what a field becomes under ``rule``."""
    p, t = rule.params, rule.transform
    if t == "keep":
        return "released unchanged (not personal data)"
    if t == "drop":
        return "never leaves the hub"
    if t == "time":
        return "coarsened to " + _TIME.get(str(p.get("to")), str(p.get("to")))
    if t == "location":
        to = str(p.get("to"))
        if to == "grid":
            return f"replaced by the centre of its {p.get('metres')} m grid square"
        return "generalised to " + _LOCATION.get(to, to)
    if t == "pseudonymise":
        with_ = p.get("with") or []
        joined = f" (together with {', '.join(with_)})" if with_ else ""
        return ("replaced by a keyed token" + joined + ": records about the same person link "
                "within this protocol and key epoch, but nobody can be named from it")
    if t == "age_band":
        return "replaced by an age band at the time of the event (no date of birth)"
    if t == "postcode":
        return ("cut to the outward code (e.g. SG1)" if p.get("to") == "outward"
                else "cut to the postcode sector (e.g. SG1 2)")
    if t == "free_text":
        if p.get("mode") == "tags":
            return (f"released only as tags from the tag set {p.get('tagset')} (no words of "
                    "the text)")
        return ("never leaves the hub" if p.get("mode", "drop") == "drop" else
                f"released only after {p.get('mode')} (allow-list vocabulary; anything not "
                "known to be safe is removed)")
    extra = ", ".join(f"{k}: {v}" for k, v in sorted(p.items()))
    return f"transformed by {t}" + (f" ({extra})" if extra else "")


def _feed_rows(protocol: Protocol, feed: str) -> list[tuple[str, str, str, bool]]:
    """(field, transform, what it becomes, personal) for every field of the feed's schema:
    the named ones first, then those the allow-list drops."""
    rules = protocol.feeds[feed].fields
    model = FEEDS.get(feed)
    personal = personal_fields(model) if model is not None else frozenset()
    rows = [(name, rule.transform, describe_rule(rule), name in personal)
            for name, rule in rules.items()]
    if model is not None:
        rows += [(name, "(not named)", "never leaves the hub: the protocol does not name it",
                  name in personal) for name in model.model_fields if name not in rules]
    return rows


def _party(ctx: DocumentContext, pid: str) -> str:
    name = ctx.names.get(pid)
    return f"{name} ({pid})" if name else pid


def _sections(protocol: Protocol, ctx: DocumentContext) -> dict[str, Any]:
    return {
        "Disclosers": [_party(ctx, p) for p in protocol.disclosers],
        "Recipients": [_party(ctx, p) for p in protocol.recipients],
        "Dates": [f"Valid from {protocol.valid_from.isoformat()} to "
                  f"{protocol.valid_until.isoformat()} inclusive",
                  f"Review by {protocol.review_by.isoformat()}"
                  + (f" ({(protocol.review_by - ctx.today).days} days from "
                     f"{ctx.today.isoformat()})" if ctx.today else ""),
                  f"Data kept for {protocol.retention_days} days after receipt, then deleted"],
        "Risk gate": [f"Quasi-identifiers, most needed first: "
                      f"{', '.join(protocol.quasi_identifiers) or 'none'}",
                      f"A combination is released exactly only once at least k = {protocol.k} "
                      "records in the last 7 days share it; otherwise it is generalised",
                      f"Counts below {protocol.suppress_below} are published as "
                      f"'<{protocol.suppress_below}'"],
    }


def _signature_rows(protocol: Protocol, ctx: DocumentContext) -> list[tuple[str, str, str, str]]:
    """(party, officer, key id, state) for every party, signed or not."""
    signed = {s.party: s for s in protocol.signatures}
    rows = []
    for party in protocol.parties:
        sig = signed.get(party)
        if sig is None:
            rows.append((_party(ctx, party), ctx.officers.get(party, ""), "", "NOT SIGNED"))
            continue
        state = "signed" if ctx.verified is None else ctx.verified.get(party, "signed")
        rows.append((_party(ctx, party), sig.officer, sig.key_id, state))
    return rows


def render_markdown(protocol: Protocol, ctx: DocumentContext | None = None) -> str:
    ctx = ctx or DocumentContext()
    out = [f"# {protocol.title}", "",
           f"Information sharing protocol **{protocol.ref}** under the Crime and Disorder Act "
           "1998.", ""]
    if ctx.status:
        out += [f"Status on the hub: **{ctx.status}**", ""]
    out += ["## Purpose", "", protocol.purpose.strip(), "", "## Lawful basis", ""]
    out += [f"- {b}" for b in protocol.lawful_basis]
    for title, items in _sections(protocol, ctx).items():
        out += ["", f"## {title}", ""] + [f"- {i}" for i in items]
    for feed in protocol.feeds:
        out += ["", f"## What each {feed} field becomes", "",
                "| field | personal | transform | what the recipients get |",
                "| --- | --- | --- | --- |"]
        out += [f"| {n} | {'yes' if pers else ''} | {t} | {what} |"
                for n, t, what, pers in _feed_rows(protocol, feed)]
    out += ["", "## Signatures", "", "| party | officer | key id | signature |",
            "| --- | --- | --- | --- |"]
    out += [f"| {p} | {o} | {k} | {s} |" for p, o, k, s in _signature_rows(protocol, ctx)]
    return "\n".join(out) + "\n"


def render_html(protocol: Protocol, ctx: DocumentContext | None = None) -> str:
    ctx = ctx or DocumentContext()
    e = html.escape

    def table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
        th = "".join(f"<th>{e(h)}</th>" for h in head)
        trs = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"

    parts = [f"<h1>{e(protocol.title)}</h1>",
             f"<p>Information sharing protocol <strong>{e(protocol.ref)}</strong> under the "
             "Crime and Disorder Act 1998.</p>"]
    if ctx.status:
        parts.append(f'<p class="status">Status on the hub: <strong>{e(ctx.status)}</strong></p>')
    parts += ["<h2>Purpose</h2>", f"<p>{e(protocol.purpose.strip())}</p>",
              "<h2>Lawful basis</h2>",
              "<ul>" + "".join(f"<li>{e(b)}</li>" for b in protocol.lawful_basis) + "</ul>"]
    for title, items in _sections(protocol, ctx).items():
        parts += [f"<h2>{e(title)}</h2>",
                  "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>"]
    for feed in protocol.feeds:
        rows = [(n, "yes" if pers else "", t, what)
                for n, t, what, pers in _feed_rows(protocol, feed)]
        parts += [f"<h2>What each {e(feed)} field becomes</h2>",
                  table(("field", "personal", "transform", "what the recipients get"), rows)]
    parts += ["<h2>Signatures</h2>",
              table(("party", "officer", "key id", "signature"), _signature_rows(protocol, ctx))]
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;"
             "text-align:left;vertical-align:top}")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{e(protocol.ref)}: {e(protocol.title)}</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")
