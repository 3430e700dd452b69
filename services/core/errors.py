"""One root exception for the hub, with a few shallow subclasses.

Raise once, where the problem is known; callers decide whether to log, reject or stop.
"""

from __future__ import annotations


class HubError(Exception):
    """Root of every error the hub raises on purpose."""


class ConfigError(HubError):
    """A configuration or protocol document is invalid.

    ``where`` names the file, line and field so an officer can fix it without reading code.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = ":".join(str(p) for p in (file, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field {field})" if field else ""
        super().__init__(f"{prefix}{message}{suffix}")


class RecordRejected(HubError):
    """A published record failed validation; ``problems`` are (json_pointer, reason) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{ptr or '/'}: {reason}" for ptr, reason in problems))


class CryptoError(HubError):
    """A key is missing, shredded or wrong, or a ciphertext failed authentication."""


class ProtocolError(HubError):
    """No live protocol allows this disclosure (unsigned, expired, revoked, tampered)."""


class BrokerUnavailable(HubError):
    """The Kafka broker could not be reached or did not acknowledge in time."""


class TopicShapeError(HubError):
    """A topic exists with a shape the hub cannot run on (partitions, cleanup, retention)."""
