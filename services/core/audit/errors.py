"""Audit errors, in the hub's error tree (``services/core/errors.py``)."""

from __future__ import annotations

from services.core.errors import HubError


class AuditError(HubError):
    """The audit chain was asked to record or resume from something that would break it."""
