"""Everything the demo (and the end-to-end tests) generate for themselves: a master key, an
officer key per party, the county's protocols signed by every party, and partner API keys.
Nothing here is committed; it all lives in the state directory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services.core.audit.key import ensure_audit_key
from services.core.config.county import County, Group, Partner, load_county
from services.core.config.publish import (
    Message,
    county_messages,
    officer_messages,
    protocol_message,
    with_officer_fingerprint,
)
from services.core.crypto.hashed_tokens import HashedTokenStore
from services.core.crypto.keys import MasterKey, write_private_file
from services.core.crypto.officer_trust import dump_log, genesis
from services.ingest.credentials import CredentialStore
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import (
    generate_officer_key,
    private_key_from_pem,
    save_private_key,
    sign_protocol,
)
from services.router.web import tokens as group_tokens


@dataclass
class Bootstrap:
    county: County
    messages: list[Message] = field(default_factory=list)
    api_keys: dict[str, str] = field(default_factory=dict)
    #: group id -> HTTP token for its stream, export and page (services/router/web).
    group_tokens: dict[str, str] = field(default_factory=dict)
    protocols: list[Protocol] = field(default_factory=list)


def officer_of(county: County, party: str) -> str:
    items: list[Partner | Group] = [*county.partners, *county.groups]
    for item in items:
        if item.id == party:
            return str(item.officer)
    return f"Designated officer, {party}"


def protocol_yaml(protocol: Protocol) -> str:
    return yaml.safe_dump(protocol.model_dump(mode="json"), sort_keys=False, width=100)


def bootstrap(state_dir: Path, config_dir: Path, *, protocols_dir: Path | None = None) -> Bootstrap:
    state_dir.mkdir(parents=True, exist_ok=True)
    if not (state_dir / "master.key").exists():
        MasterKey.generate_file(state_dir / "master.key")
    # Signs audit checkpoints; Settings.resolved_audit_key_file() points here by default.
    ensure_audit_key(state_dir / "audit-key.pem")
    county = load_county(config_dir / "county.yaml")
    out = Bootstrap(county, county_messages(config_dir / "county.yaml"))
    protocols = [load_protocol(p) for p in sorted((protocols_dir or config_dir / "protocols")
                                                  .glob("*.yaml"))]
    parties = sorted({party for p in protocols for party in p.parties})
    keys = {}
    for party in parties:
        private_pem, public_pem, kid = generate_officer_key()
        save_private_key(state_dir / "officers" / party / f"{kid}.key.pem", private_pem,
                         overwrite=True)
        (state_dir / "officers" / party / f"{kid}.pub.pem").write_bytes(public_pem)
        keys[party] = private_pem
    # The demo's trust anchors: its fresh officer keys as the genesis set, pinned by the county
    # entry it publishes (a deployment writes the file once and puts the fingerprint in
    # county.yaml; see services/core/crypto/officer_trust.py).
    anchors = genesis((party, officer_of(county, party),
                       private_key_from_pem(keys[party]).public_key()) for party in parties)
    (state_dir / "officer-keys.yaml").write_text(dump_log(anchors), encoding="utf-8")
    out.messages = with_officer_fingerprint(out.messages, anchors)
    out.messages += officer_messages(anchors)
    signed_dir = state_dir / "protocols"
    signed_dir.mkdir(exist_ok=True)
    for protocol in protocols:
        for party in protocol.parties:
            protocol = sign_protocol(protocol, keys[party], party, officer_of(county, party))
        text = protocol_yaml(protocol)
        (signed_dir / f"{protocol.id}-v{protocol.version}.yaml").write_text(text, encoding="utf-8")
        out.messages.append(protocol_message(protocol.ref, text, f"{protocol.id}.yaml"))
        out.protocols.append(protocol)
    store = CredentialStore(state_dir / "partners.json")
    for partner in county.partners:
        out.api_keys[partner.id] = store.add(partner.id).api_key
    # Plaintext secrets: mode 0600, like every key file.
    write_private_file(state_dir / "demo-api-keys.json",
                       json.dumps(out.api_keys, indent=1).encode(), overwrite=True)
    tokens = HashedTokenStore(state_dir / group_tokens.FILE_NAME, group_tokens.PREFIX)
    for group in county.groups:
        # One member per group in the demo, so reads are audited by name as in production.
        out.group_tokens[group.id] = tokens.issue(group.id, member=f"analyst@{group.id}").token
    write_private_file(state_dir / "demo-group-tokens.json",
                       json.dumps(out.group_tokens, indent=1).encode(), overwrite=True)
    return out
