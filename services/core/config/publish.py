"""Publish configuration to the compacted config topic (``s115hub config apply``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.core.config.county import load_county
from services.core.config.settings import Settings
from services.core.config.state import encode
from services.core.crypto.officer_trust import AnchorLog, fingerprint, replay
from services.core.kafka.clients import kafka_python_common
from services.core.kafka.topics import topics_for

Message = tuple[str, dict[str, Any] | None]


def county_messages(county_file: Path) -> list[Message]:
    county = load_county(county_file)
    return [("county", county.model_dump(mode="json"))]


def protocol_message(ref: str, text: str, source: str) -> Message:
    return (f"protocol/{ref}", {"yaml": text, "source": source})


def officer_message(key_id: str, party: str, officer: str, public_pem: str,
                    countersigned_by: str = "genesis") -> Message:
    return (f"officer/{key_id}", {"party": party, "officer": officer,
                                  "public_key_pem": public_pem,
                                  "countersigned_by": countersigned_by})


def officer_messages(log: AnchorLog) -> list[Message]:
    """The anchor log's keys as config-topic entries, so every key change becomes an audit fact
    (``officer.added`` naming who countersigned, ``officer.removed`` for retired keys). The topic
    copy informs status and audit only; services trust the mounted file."""
    from cryptography.hazmat.primitives import serialization

    trust = replay(log)
    out: list[Message] = []
    for kid, (party, key) in sorted(trust.keys.items()):
        _, officer, signer = trust.provenance[kid]
        pem = key.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        out.append(officer_message(kid, party, officer, pem, signer))
    entries = [*log.genesis, *log.changes]
    retired = {e.key_id for e in entries} | {e.replaces for e in entries if e.replaces}
    out += [(f"officer/{kid}", None) for kid in sorted(retired - set(trust.keys))]
    return out


def with_officer_fingerprint(messages: list[Message], log: AnchorLog) -> list[Message]:
    """``messages`` with the county entry pinning ``log`` (the demo approves its own keys)."""
    return [(k, {**v, "officer_keys_sha256": fingerprint(log)} if k == "county" and v else v)
            for k, v in messages]


def publish(settings: Settings, messages: list[Message], *, actor: str | None = None) -> int:
    """Publish ``messages`` and then the audit facts they imply (protocol applied/signed/revoked,
    officer keys, county); ``actor`` names who made the change (default: local user@host)."""
    from kafka import KafkaProducer

    from services.core.audit.chain_io import publish_facts
    from services.core.audit.facts import config_facts_for, default_actor

    producer = KafkaProducer(**kafka_python_common(settings), acks="all")
    topic = topics_for(settings).config
    try:
        for key, value in messages:
            producer.send(topic, key=key.encode(), value=encode(value)).get(timeout=30)
    finally:
        producer.close()
    # After the change is acknowledged: a fact must never claim a change that did not happen.
    publish_facts(settings, config_facts_for(messages, actor or default_actor()))
    return len(messages)
