"""The root of the hub's error tree, and the errors that belong to no one concern.

Each part of the shared library has its own errors, all deriving from ``HubError``:
``services.core.config.errors.ConfigError``, ``services.core.crypto.errors.CryptoError``,
``services.core.kafka.errors.BrokerError`` (``BrokerUnavailable``, ``TopicShapeError``),
``services.core.audit.errors.AuditError``. Catch ``HubError`` for "ours, with a message fit to
show"; catch a subpackage's class for one concern; never test an exception's module or name.

Raise once, where the problem is known; callers decide whether to log, reject or stop.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class RecordRejected(HubError):
    """A published record failed validation; ``problems`` are (json_pointer, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{ptr or '/'}: {reason}" for ptr, reason in problems))


class ProtocolError(HubError):
    """No live protocol allows this disclosure (unsigned, expired, revoked, tampered)."""
