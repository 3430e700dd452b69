"""Per-group tokens for subscribers without Kafka clients.

Where they live: ``<state_dir>/group-tokens.json``, hashes only, written by ``s115hub group
token issue|revoke`` and read by the router on every request (stat, re-read on change), exactly
as ingest reads partner API keys. Not the config topic: every service reads that topic and a
compacted topic keeps superseded values until compaction, so a revoked hash would linger where
it is not needed; the state directory is already where the hub's secrets sit.

Tokens read ``s115g_<id>_<secret>``; the different prefix means a partner API key can never be
mistaken for a group token even if the files were mixed up.
"""

from __future__ import annotations

from services.core.config.settings import Settings
from services.core.crypto.hashed_tokens import HashedTokenStore

PREFIX = "s115g"
FILE_NAME = "group-tokens.json"


def group_token_store(settings: Settings) -> HashedTokenStore:
    return HashedTokenStore(settings.state_dir / FILE_NAME, PREFIX)
