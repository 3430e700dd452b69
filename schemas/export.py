"""Write the JSON Schema of every contract model to ``schemas/json/``.

Run ``python -m schemas.export`` after changing a model; ``--check`` exits non-zero when a
checked-in file differs from what the models generate (the drift test runs the same comparison)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.alert import HotspotAlert
from schemas.audit_fact import AuditFact
from schemas.config_message import OfficerKey, ProtocolDocument, Revocation
from schemas.dead_letter import DeadLetter
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import FEEDS
from schemas.shared import SharedRecord

JSON_DIR = Path(__file__).resolve().parent / "json"


def contracts() -> dict[str, type[BaseModel]]:
    """File stem → model, for every schema the hub publishes."""
    # The audit event and the county document are defined beside the pure logic that owns them
    # (the chain's hashing, the county's validation); their schemas are published from here too.
    from services.core.audit.chain import AuditEvent
    from services.core.config.county import County

    out: dict[str, type[BaseModel]] = {f"feed.{name}": model for name, model in FEEDS.items()}
    out.update({"envelope": Envelope, "raw-record": RawRecord, "shared-record": SharedRecord,
                # s115.deliver.<group> carries the shared record as released, byte for byte.
                "deliver-record": SharedRecord,
                "hotspot-alert": HotspotAlert, "audit-fact": AuditFact, "audit-event": AuditEvent,
                "dead-letter": DeadLetter, "config.county": County,
                "config.protocol": ProtocolDocument, "config.officer": OfficerKey,
                "config.revoked": Revocation})
    return out


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def generated() -> dict[str, str]:
    return {f"{stem}.schema.json": render(model) for stem, model in contracts().items()}


def drift(json_dir: Path = JSON_DIR) -> list[str]:
    """Names of files that are missing, stale or no longer generated."""
    want = generated()
    have = {p.name for p in json_dir.glob("*.schema.json")}
    stale = [name for name, text in want.items()
             if name not in have or (json_dir / name).read_text() != text]
    return sorted(stale + list(have - want.keys()))


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = drift()
        for name in bad:
            print(f"schemas/json/{name} differs from the models; run python -m schemas.export")
        return 1 if bad else 0
    JSON_DIR.mkdir(exist_ok=True)
    for old in JSON_DIR.glob("*.schema.json"):
        old.unlink()
    for name, text in generated().items():
        (JSON_DIR / name).write_text(text)
        print(f"wrote schemas/json/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
