"""Per-group tokens: hashes only, owner from the file, revocation seen by a running reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.core.config.errors import ConfigError
from services.core.crypto.hashed_tokens import HashedTokenStore
from services.router.web.tokens import FILE_NAME, PREFIX


def _store(tmp_path: Path) -> HashedTokenStore:
    return HashedTokenStore(tmp_path / FILE_NAME, PREFIX)


def test_issued_token_authenticates_as_its_group_and_is_stored_only_as_a_hash(
        tmp_path: Path) -> None:
    store = _store(tmp_path)
    a = store.issue("grp-a")
    b = store.issue("grp-b")
    assert a.token.startswith("s115g_")
    assert a.token != b.token
    assert store.authenticate(a.token) == "grp-a"
    assert store.authenticate(b.token) == "grp-b"
    text = (tmp_path / FILE_NAME).read_text()
    secret_a = a.token.split("_", 2)[2]
    assert secret_a not in text
    assert a.token not in text
    assert json.loads(text)[a.token_id]["holder"] == "grp-a"
    assert oct((tmp_path / FILE_NAME).stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("bad", ["", "s115g", "s115g_x", "s115_abcd_efgh", "Bearer x",
                                 "s115g_00000000_" + "A" * 43])
def test_malformed_or_unknown_tokens_are_refused(tmp_path: Path, bad: str) -> None:
    store = _store(tmp_path)
    store.issue("grp-a")
    assert store.authenticate(bad) is None


def test_a_token_with_the_right_id_but_wrong_secret_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    t = store.issue("grp-a")
    forged = f"{PREFIX}_{t.token_id}_{'x' * len(t.token.split('_', 2)[2])}"
    assert store.authenticate(forged) is None


def test_revocation_by_another_process_is_seen_by_a_running_reader(tmp_path: Path) -> None:
    reader, officer = _store(tmp_path), _store(tmp_path)  # two handles: router and CLI
    keep = officer.issue("grp-a")
    gone = officer.issue("grp-a")
    assert reader.authenticate(gone.token) == "grp-a"  # reader has cached the file now
    assert officer.revoke("grp-a", gone.token_id) == [gone.token_id]
    assert reader.authenticate(gone.token) is None
    assert reader.authenticate(keep.token) == "grp-a"
    officer.revoke("grp-a")
    assert reader.authenticate(keep.token) is None


def test_revoking_nothing_live_names_the_group(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(ConfigError, match="grp-z"):
        store.revoke("grp-z")


def test_a_partner_api_key_is_not_a_group_token(tmp_path: Path) -> None:
    from services.ingest.credentials import CredentialStore

    partner_key = CredentialStore(tmp_path / "partners.json").add("grp-a").api_key
    assert _store(tmp_path).authenticate(partner_key) is None
