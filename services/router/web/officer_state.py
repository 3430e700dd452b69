"""The officer page's state, injected into its routes (officer_routes.py) as a dependency: the
settings, the credential stores, sign-in, the audit of every view and action, and the data the
views show, read from durable topics (``services/core/ops/durable.py``) only."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from services.core.audit.facts import config_fact
from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import HashedTokenStore
from services.core.crypto.officer_trust import AnchorFile
from services.router.web.officer_tokens import officer_token_store, partner_key_store
from services.router.web.tokens import group_token_store

COOKIE = "s115hub_officer"
ACTOR_SUFFIX = "@officer-page"


class OfficerPage:
    def __init__(self, settings: Settings,
                 publish: Callable[[list[dict[str, Any]]], Any] | None = None) -> None:
        self.settings = settings
        self.officers = officer_token_store(settings)
        self.partner_keys = partner_key_store(settings)
        self.group_tokens = group_token_store(settings)
        self._publish = publish

    # -- access and audit ---------------------------------------------------------------------

    def officer_of(self, request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        return self.officers.authenticate(token) if token else None

    def require(self, request: Request) -> str:
        officer = self.officer_of(request)
        if officer is None:
            raise HTTPException(401, "sign in at /officer/")
        return officer

    async def audit(self, action: str, officer: str, subject: str,
                    detail: Mapping[str, Any] | None = None) -> None:
        """Put one officer action on the chain; 503 (and nothing shown) if the broker refuses."""
        fact = config_fact(action, subject, f"{officer}{ACTOR_SUFFIX}", detail=dict(detail or {}))
        try:
            if self._publish is not None:
                await asyncio.to_thread(self._publish, [fact])
            else:
                from services.core.audit.chain_io import publish_facts

                await asyncio.to_thread(publish_facts, self.settings, [fact])
        except Exception as exc:  # kafka-python's errors share no base with ours
            raise HTTPException(503, f"not done: the audit chain did not take the record of "
                                     f"this action ({type(exc).__name__})") from exc

    async def view(self, request: Request, page: str, **detail: Any) -> str:
        officer = self.require(request)
        await self.audit("officer.action", officer, f"view:{page}", detail)
        return officer

    # -- data (durable topics and the state directory only) -----------------------------------

    async def config(self) -> Any:
        from services.core.ops.durable import read_config_state

        return await read_config_state(self.settings)

    async def facts(self) -> Any:
        from services.core.ops.durable import read_facts

        return await read_facts(self.settings)

    async def status(self) -> Any:
        """The hub status the home view shows (``services/core/ops/status.py``)."""
        from services.core.kafka.topics import FEED_NAMES
        from services.core.ops.status import build_status

        facts = await self.facts()
        today = datetime.now(UTC).date()
        county = facts.config.county
        return build_status(
            partners={p.id: list(p.feeds) for p in county.partners} if county else {},
            groups=[g.id for g in county.groups] if county else [], feeds=list(FEED_NAMES),
            envelopes=facts.envelopes, letters=facts.letters, events=facts.events,
            protocols=self.protocol_rows(facts.config, today), today=today)

    def protocol_rows(self, config: Any, today: date) -> list[Any]:
        """Every protocol on the hub with its liveness today, signatures checked against the
        officer keys' trust anchors."""
        from services.protocols.in_force import protocol_rows

        return list(protocol_rows(config, today, AnchorFile(
            self.settings.resolved_officer_keys_file())))

    async def reconcile(self, partner: str, start: datetime, end: datetime) -> Any:
        from services.core.audit.reconcile import reconcile

        facts = await self.facts()
        return reconcile(partner, start, end, envelopes=facts.envelopes, letters=facts.letters,
                         events=facts.events)

    async def holders(self) -> list[tuple[str, list[str], HashedTokenStore]]:
        """(kind, the county's holders of that kind, their credential store), partners first."""
        county = (await self.config()).county
        return [("partner", [p.id for p in county.partners] if county else [], self.partner_keys),
                ("group", [g.id for g in county.groups] if county else [], self.group_tokens)]

    async def store_for(self, kind: str, holder: str) -> HashedTokenStore:
        """The credential store for ``kind`` after checking ``holder`` is one in the county."""
        for k, known, store in await self.holders():
            if k == kind:
                if holder not in known:
                    raise HTTPException(404, f"no {kind} {holder!r} in the live county file")
                return store
        raise HTTPException(400, "kind must be partner or group")

    async def verify_chain(self) -> Any:
        from services.core.audit.chain import verify_chain
        from services.core.audit.chain_io import read_chain
        from services.core.audit.key import load_audit_key

        hub = load_audit_key(self.settings.resolved_audit_key_file())
        chain = await read_chain(self.settings)
        return verify_chain(chain.events, chain.checkpoints, {hub.key_id: hub.public})


def officer_page(request: Request) -> OfficerPage:
    """The app's OfficerPage (set by ``officer.add_officer_page``), as a route dependency."""
    page: OfficerPage = request.app.state.officer
    return page


Page = Annotated[OfficerPage, Depends(officer_page)]


def same_origin(request: Request) -> None:
    """Refuse a state-changing request sent from another site (a route dependency)."""
    origin = request.headers.get("origin")
    if origin and urllib.parse.urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site request refused")


def when(value: str | None, default: datetime) -> datetime:
    """A query's ISO date or date-time (UTC if it names no offset), or ``default``; else 400."""
    if not value:
        return default
    try:
        dt = (datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
              if len(value) == 10 else datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise HTTPException(400, f"{value!r} is not an ISO-8601 date or time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
