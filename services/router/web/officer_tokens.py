"""Officer credentials for the officer page: hashes only, in ``<state_dir>/officer-tokens.json``,
issued and revoked by ``s115hub officer token``. The same store as partner keys and group tokens
(``HashedTokenStore``), with its own prefix so no other credential opens the officer page.

The router also reads ``partners.json`` and ``group-tokens.json`` here, through the same store
class, so the officer page can issue and revoke them without importing the ingest service.
"""

from __future__ import annotations

from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import HashedTokenStore

PREFIX = "s115o"
FILE_NAME = "officer-tokens.json"
#: Partner API keys: the file and prefix ingest's CredentialStore uses.
PARTNER_FILE, PARTNER_PREFIX = "partners.json", "s115"


def officer_token_store(settings: Settings) -> HashedTokenStore:
    return HashedTokenStore(settings.state_dir / FILE_NAME, PREFIX)


def partner_key_store(settings: Settings) -> HashedTokenStore:
    return HashedTokenStore(settings.state_dir / PARTNER_FILE, PARTNER_PREFIX)
