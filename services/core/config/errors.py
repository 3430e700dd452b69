"""Configuration errors, in the hub's error tree (``services/core/errors.py``)."""

from __future__ import annotations

from services.core.errors import HubError


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
