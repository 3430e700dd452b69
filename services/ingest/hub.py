"""Ingest's state (``Hub``): the partner credentials, the configuration it follows, the rate
limiter, the idempotency cache, the producer and the broker's health. Built once by
``make_app`` (app.py) and injected into the routes (routes.py) as the ``HubDep`` dependency."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Annotated, Any

from fastapi import Depends, Request

from services.core.config.follow import ConfigFollower
from services.core.config.settings import Settings
from services.core.config.state import ConfigState
from services.core.crypto.fields import DataKeyStore
from services.core.crypto.keys import MasterKey
from services.core.kafka.clients import ensure_topics
from services.core.kafka.errors import BrokerUnavailable
from services.core.kafka.stage_runner import StageRunner
from services.core.kafka.topics import TopicSpec, topic_specs
from services.core.ops.metrics import ServiceMetrics
from services.ingest.credentials import CredentialStore
from services.ingest.limits import IdempotencyCache, RateLimiter
from services.ingest.records import RECORD_ID_INFO
from services.ingest.service import IngestService

log = logging.getLogger(__name__)


class Hub:
    """What the routes need, built once in make_app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ack_timeout = settings.ingest_ack_timeout_ms / 1000
        self.retry_after = {"Retry-After": str(settings.ingest_retry_after_s)}
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

    def require_service(self) -> IngestService:
        """The record logic, set up by the app's lifespan once the producer is started."""
        assert self.service is not None
        return self.service

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


def hub_of(request: Request) -> Hub:
    """The app's Hub (set by ``make_app``), as a route dependency."""
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(hub_of)]
