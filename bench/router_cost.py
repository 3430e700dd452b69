"""CPU cost of the router's per-record path without a broker: ``python -m bench.router_cost``.

Runs the router's per-record path as its stage does (contract parse, entitlement, ledger,
disclosure fact: ``SharedRecord.model_validate_json`` then ``Router.route_record``), then feeds the
facts through the chainer's own steps (``AuditFact`` contract, ``ChainState.accept_message``),
as ``AuditChainer.handle`` does. Kafka client cost (about 10 % of router
samples in the py-spy profile) is not included.

``--reference`` forces the pure-Python RFC 8785 encoder (the code before the json.dumps fast
path) so both figures come from one run on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.audit_fact import AuditFact
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.audit.key import HubAuditKey, audit_key_id
from services.core.audit.log import ChainState
from services.core.config.county import load_county
from services.core.config.settings import Settings
from services.core.crypto import canonical
from services.protocols.protocol import Protocol
from services.router.app import Router
from services.router.routing_view import RoutingView, Terms
from services.router.subscriptions import subscriptions_for

# Broxbourne: police-district gives each record to grp-broxbourne and the county group, close to
# the 1.75 deliveries per record the crash tests measured.
_DISTRICT = ("E07000095", "Broxbourne")


def shared_records(n: int) -> list[bytes]:
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        rec = SharedRecord(
            hub_record_id=f"01JBENCH{i:018d}", partner="herts-police", feed="police",
            category="burglary", ward_code="E05004680", ward_name="Cheshunt North",
            district_code=_DISTRICT[0], district_name=_DISTRICT[1],
            fields={"category": "burglary", "time_precision": "hour",
                    "occurred_at": f"2026-11-{1 + i % 28:02d}T{i % 24:02d}",
                    "victim_name": f"p_{i:032x}", "victim_dob": "30-39",
                    "suspect_name": f"p_{i * 7:032x}", "suspect_dob": "18-24",
                    "summary": "Rear door forced at [ADDRESS]; [PERSON] saw two men leave "
                               "towards the station; items taken: laptop, jewellery. " * 2},
            protocol="police-district@1", released_at=at)
        out.append(rec.model_dump_json().encode())
    return out


def make_router(settings: Settings) -> Router:
    router = Router(settings)
    county = load_county(settings.config_dir / "county.yaml")
    subs = subscriptions_for(county, AreaIndex.load(settings.boundaries_dir))
    terms: dict[str, Terms] = {}
    live: dict[str, frozenset[str]] = {}
    for path in sorted(Path(settings.config_dir, "protocols").glob("*.yaml")):
        p = Protocol.model_validate(yaml.safe_load(path.read_text()))
        live[p.ref] = frozenset(p.recipients)
        by_feed = {feed: {name: rule.transform for name, rule in rules.fields.items()
                          if rule.transform != "drop"} for feed, rules in p.feeds.items()}
        terms[p.ref] = (tuple(p.lawful_basis), by_feed)
    # No signed config state without a broker: the view is built by hand.
    router.views.set(RoutingView(subs=tuple(subs), live=live, terms=terms))
    return router


async def run(n: int) -> dict[str, float]:
    settings = Settings()
    router = make_router(settings)
    values = shared_records(n)
    sent: list[Any] = []
    k = Ed25519PrivateKey.generate()
    state = ChainState(HubAuditKey(k, audit_key_id(k.public_key())), every=500)

    t0 = time.process_time()
    for v in values:
        rec = SharedRecord.model_validate_json(v)
        view = router.views.current
        sent += router.route_record(rec, v, view.route(rec), view)
    t1 = time.process_time()
    facts = [o.value for o in sent if o.topic == router.topics.audit_facts]
    for value in facts:  # as AuditChainer.handle: the message bytes come from sealing
        got = state.accept_message(AuditFact.model_validate_json(value).model_dump())
        assert got is not None
    t2 = time.process_time()
    total = t2 - t0
    return {"records": n, "deliveries": len(facts),
            "route_ms_per_record": 1000 * (t1 - t0) / n,
            "chain_ms_per_record": 1000 * (t2 - t1) / n,
            "records_per_s": n / total}


def canonical_us(reference: bool, rounds: int = 2000) -> float:
    """µs per canonical_bytes call on a disclosure event's fields, the chain's commonest input."""
    rec = json.loads(shared_records(1)[0])
    t0 = time.perf_counter()
    for _ in range(rounds):
        (canonical._reference_bytes if reference else canonical.canonical_bytes)(rec)
    return 1e6 * (time.perf_counter() - t0) / rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5000, help="shared records (default 5000)")
    ap.add_argument("--reference", action="store_true",
                    help="use only the pure-Python RFC 8785 encoder (the old path)")
    args = ap.parse_args()
    if args.reference:
        canonical._plain = lambda v: False
    out = asyncio.run(run(args.n))
    out["canonical_us_per_record_dict"] = canonical_us(args.reference)
    print(json.dumps({"path": "reference" if args.reference else "fast", **out}, indent=1))


if __name__ == "__main__":
    main()
