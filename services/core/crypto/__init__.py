"""Crypto: canonical JSON for hashing and signing (``canonical``), personal fields encrypted at
rest (``fields``), the master key and key files (``keys``), per-protocol pseudonym keys
(``keyring``), hashed bearer tokens (``hashed_tokens``) and the officer trust anchors that decide
which keys may sign a protocol (``officer_trust``)."""
