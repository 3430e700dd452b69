"""How many audit events the issue-16 accounting adds, and what chaining them costs: pure, no Kafka.

Runs synthetic records of each feed through ``Depersonaliser.process`` with the Hertfordshire
protocols (as bench/engine_cost.py does) and counts the accounting facts
(``services/depersonalise/accounting.py``) per record released; then times
``ChainState.accept`` on those facts, which is the chainer's per-event CPU.

    python bench/accounting_volume.py [--records 3000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.engine_cost import FEEDS, _Clear
from demo.synthetic import Generator
from schemas.envelope import Envelope, RawRecord
from services.core.areas import AreaIndex
from services.core.audit.facts import decode_fact, encode_fact
from services.core.audit.key import HubAuditKey, audit_key_id
from services.core.audit.log import ChainState
from services.core.config.settings import REPO_ROOT, Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.depersonalise.accounting import accounting_facts
from services.depersonalise.stage import Depersonaliser
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import load_protocol
from services.protocols.signing import generate_officer_key, officer_keys_from, sign_protocol


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=3000, help="Records per feed.")
    args = ap.parse_args()
    areas = AreaIndex.load(Settings().boundaries_dir)
    protocols = [load_protocol(p) for p in sorted(
        (REPO_ROOT / "deploy" / "hertfordshire" / "protocols").glob("*.yaml"))]
    pems, signed = {}, []
    keys = {}
    for party in sorted({x for p in protocols for x in p.parties}):
        keys[party], pems[party], _ = generate_officer_key()
    for p in protocols:
        for party in p.parties:
            p = sign_protocol(p, keys[party], party, party)
        signed.append(p)
    facts = []
    with tempfile.TemporaryDirectory() as tmp:
        stage = Depersonaliser(areas=areas, opener=_Clear(),
                               keys=PseudonymKeyring(Path(tmp) / "ring", os.urandom(32)))
        stage.protocols = ProtocolSet(signed, officer_keys=officer_keys_from(pems))
        gen = Generator(areas, seed=1)
        now = datetime.now(UTC)
        print(f"{'feed':<9}{'records':>9}{'released':>10}{'generalise':>12}{'suppress':>10}")
        for feed in FEEDS:
            acts: Counter[str] = Counter()
            released = 0
            for i in range(args.records):
                ward, rec = gen.record(feed, now)
                raw = RawRecord(envelope=Envelope(
                    hub_record_id=f"{feed}-{i}", partner=gen.partner_for(feed, ward), feed=feed,
                    source_id=rec["source_id"], received_at=now), fields=rec)
                result = stage.process(raw, now=now)
                released += len(result.shared)
                mine = accounting_facts(raw.envelope, result, at=now)
                acts.update(str(f["detail"].get("gate", f["kind"])) for f in mine)
                facts += mine
            print(f"{feed:<9}{args.records:>9}{released:>10}{acts['generalise']:>12}"
                  f"{acts['suppress']:>10}")
    k = Ed25519PrivateKey.generate()
    state = ChainState(HubAuditKey(k, audit_key_id(k.public_key())), every=10**9, seconds=1e9)
    encoded = [encode_fact(f) for f in facts]
    t0 = time.process_time()
    for value in encoded:
        state.accept(decode_fact(value))
    cpu = time.process_time() - t0
    print(f"{len(facts)} accounting facts for {args.records * len(FEEDS)} records; chaining them: "
          f"{len(facts) / cpu:,.0f} events/s on one core ({cpu / len(facts) * 1e6:.0f} us each)")


if __name__ == "__main__":
    main()
