from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.core.config.errors import ConfigError
from services.ingest.credentials import CredentialStore


def test_given_issued_key_then_only_its_hash_is_stored_and_it_authenticates(
        tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "partners.json")
    issued = store.add("herts-police")
    text = (tmp_path / "partners.json").read_text()
    assert issued.api_key.split("_", 2)[2] not in text
    assert store.authenticate(issued.api_key) == "herts-police"
    assert (tmp_path / "partners.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("mangle", [lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
                                    lambda k: "nope", lambda k: "s115_ffffffff_" + k[-10:],
                                    lambda k: ""])
def test_given_wrong_key_then_no_partner(tmp_path: Path, mangle: object) -> None:
    store = CredentialStore(tmp_path / "partners.json")
    issued = store.add("herts-police")
    assert store.authenticate(mangle(issued.api_key)) is None  # type: ignore[operator]


def test_given_revocation_by_another_process_then_a_running_store_sees_it(tmp_path: Path) -> None:
    running = CredentialStore(tmp_path / "partners.json")
    issued = running.add("herts-police")
    assert running.authenticate(issued.api_key) == "herts-police"  # cached now
    CredentialStore(tmp_path / "partners.json").revoke("herts-police")
    assert running.authenticate(issued.api_key) is None
    entry = json.loads((tmp_path / "partners.json").read_text())[issued.key_id]
    assert entry["revoked_at"] is not None


def test_given_no_live_key_then_revoke_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no live key"):
        CredentialStore(tmp_path / "partners.json").revoke("nobody")
