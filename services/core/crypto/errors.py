"""Crypto errors, in the hub's error tree (``services/core/errors.py``)."""

from __future__ import annotations

from services.core.errors import HubError


class CryptoError(HubError):
    """A key is missing, shredded or wrong, or a ciphertext failed authentication."""
