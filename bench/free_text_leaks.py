"""Leaks and utility of the free-text release modes on the canary corpus, through the depersonalise
stage (``Depersonaliser.process``: protocol lookup, signature check, area lookup, every transform,
the risk gate) with the shipped Hertfordshire protocols and two variants of each that release
every free-text field of its feed, one with ``vocabulary``, one with ``tags``.

    python bench/free_text_leaks.py [--per-feed 150] [--seed 11]

Prints leaks per kind and mode, utility, and writes bench/results/free_text_leaks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from bench.canary_corpus import KINDS, CorpusRecord, Planted, build
from demo.synthetic import Generator
from schemas.base import free_text_fields
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import FEEDS
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT, Settings
from services.core.crypto.keyring import PseudonymKeyring
from services.depersonalise.stage import Depersonaliser
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import Protocol, parse_protocol
from services.protocols.signing import generate_officer_key, officer_keys_from, sign_protocol
from services.protocols.transforms.free_text_normalise import normalise

VOCABULARY = {"transform": "free_text", "mode": "vocabulary",
              "vocabulary": ["incident-en@1", "towns-east@1"]}
TAGS = {"transform": "free_text", "mode": "tags", "tagset": "mo-tags@1"}
MODES = ("shipped", "vocabulary", "tags")


class _Clear:
    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]:
        return {}


def protocols(directory: Path) -> dict[str, tuple[str, Protocol]]:
    """ref -> (mode, protocol): the shipped ones and, per feed with free text, two variants."""
    out: dict[str, tuple[str, Protocol]] = {}
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        shipped = parse_protocol(text, str(path))
        out[shipped.ref] = ("shipped", shipped)
        for mode, rule in (("vocabulary", VOCABULARY), ("tags", TAGS)):
            doc = yaml.safe_load(text)
            doc["id"] = f"{doc['id']}-{mode}"
            for feed, rules in doc["feeds"].items():
                for name in free_text_fields(FEEDS[feed]):
                    rules["fields"][name] = dict(rule)
            variant = parse_protocol(yaml.safe_dump(doc), f"{path}:{mode}")
            out[variant.ref] = (mode, variant)
    return out


def stage_for(protos: dict[str, tuple[str, Protocol]], key_dir: Path) -> Depersonaliser:
    keys: dict[str, bytes] = {}
    pems: dict[str, bytes] = {}
    signed = []
    for _, p in protos.values():
        for party in p.parties:
            if party not in keys:
                keys[party], pems[party], _ = generate_officer_key()
            p = sign_protocol(p, keys[party], party, party)
        signed.append(p)
    areas = AreaIndex.load(Settings().boundaries_dir)
    stage = Depersonaliser(areas=areas, opener=_Clear(),
                           keys=PseudonymKeyring(key_dir / "ring", os.urandom(32)))
    stage.protocols = ProtocolSet(signed, officer_keys=officer_keys_from(pems))
    return stage


def corpus(seed: int, per_feed: int) -> tuple[list[CorpusRecord], list[str]]:
    """The corpus planted into demo-generator records; and each record's partner, by index."""
    areas = AreaIndex.load(Settings().boundaries_dir)
    gen = Generator(areas, seed=seed)
    bases: dict[str, list[dict[str, Any]]] = defaultdict(list)
    partners: list[str] = []
    for feed in ("police", "fire", "health", "council"):
        for _ in range(per_feed):
            ward, rec = gen.record(feed)
            bases[feed].append(rec)
            partners.append(gen.partner_for(feed, ward))
    records = build(seed=seed, per_feed=per_feed, bases=bases)
    return records, partners


_DIGIT_RUN = re.compile(r"\d[\d\s\-./,]*\d|\d")


def _plain(text: str) -> str:
    return normalise(text).lower()


def leaked(planted: Planted, text: str, *, joined: bool = True) -> list[str]:
    """The planted fragments visible in ``text`` (already ``_plain``); ``joined``: also look for
    a fragment of five letters or more with the text's spaces and hyphens taken out (a name
    released in halves)."""
    compact = re.sub(r"[\s\-]+", "", text)
    runs = ["".join(c for c in m[0] if c.isdigit()) for m in _DIGIT_RUN.finditer(text)]
    out = []
    for frag in planted.fragments:
        f = _plain(frag)
        digits = "".join(c for c in f if c.isdigit())
        if digits:
            if any(digits in run for run in runs):
                out.append(frag)
        elif re.search(rf"(?<![a-z0-9]){re.escape(f)}(?![a-z0-9])", text) or (
                joined and len(f) >= 5 and f.replace("-", "") in compact):
            out.append(frag)
    return out


def released_text(feed: str, fields: dict[str, Any]) -> str:
    parts = []
    for name in free_text_fields(FEEDS[feed]):
        value = fields.get(name)
        parts.append(" ".join(value) if isinstance(value, list) else str(value or ""))
    return " \n ".join(parts)


def run(seed: int = 11, per_feed: int = 120) -> dict[str, Any]:
    records, partners = corpus(seed, per_feed)
    protos = protocols(REPO_ROOT / "deploy" / "hertfordshire" / "protocols")
    leaks: dict[str, Counter[str]] = {m: Counter() for m in MODES}
    examples: list[dict[str, str]] = []
    planted_count: Counter[str] = Counter()
    words_kept = words_total = 0
    tp = fp = fn = 0
    releasing: Counter[str] = Counter()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        stage = stage_for(protos, Path(tmp))
        for i, rec in enumerate(records):
            planted_count.update(p.kind for p in rec.planted)
            env = Envelope(hub_record_id=f"canary-{i}", partner=partners[i], feed=rec.feed,
                           source_id=str(rec.fields.get("source_id", i)), received_at=now)
            result = stage.process(RawRecord(envelope=env, fields=rec.fields), now=now)
            assert result.blocked is None, (result.blocked, result.detail)
            for shared in result.shared:
                mode = protos[shared.protocol][0]
                text = _plain(released_text(rec.feed, shared.fields))
                if text.strip():
                    releasing[mode] += 1
                # Ward and district names are released on purpose; a surname such as "Green"
                # may be part of one.
                whole = _plain(shared.model_dump_json(exclude={"ward_name", "district_name"}))
                for p in rec.planted:
                    found = leaked(p, text) + [f for f in p.fragments if len(f) >= 4 and not any(
                        c.isdigit() for c in f) and f not in leaked(p, text)
                        and leaked(Planted(p.kind, "", (f,)), whole, joined=False)]
                    if found:
                        leaks[mode][p.kind] += 1
                        if len(examples) < 40:
                            examples.append({"mode": mode, "kind": p.kind,
                                             "written": p.written, "released": text[:300]})
                if mode == "vocabulary" and rec.text_field in shared.fields:
                    released_words = set(re.findall(r"[a-z]+", text))
                    words_total += len(rec.analyst_words)
                    words_kept += sum(w in released_words for w in rec.analyst_words)
                if mode == "tags":
                    found_tags = set(shared.fields.get(rec.text_field) or [])
                    tp += len(found_tags & rec.tags)
                    fp += len(found_tags - rec.tags)
                    fn += len(rec.tags - found_tags)
    return {
        "seed": seed, "records": len(records), "planted": sum(planted_count.values()),
        "kinds": len(planted_count), "planted_per_kind": dict(sorted(planted_count.items())),
        "released_texts_per_mode": dict(releasing),
        "leaks_per_mode_and_kind": {m: {k: leaks[m].get(k, 0) for k in KINDS} for m in MODES},
        "leaks_total": {m: sum(leaks[m].values()) for m in MODES},
        "vocabulary_analyst_words_kept": round(words_kept / max(words_total, 1), 4),
        "vocabulary_analyst_words": words_total,
        "tags_precision": round(tp / max(tp + fp, 1), 4),
        "tags_recall": round(tp / max(tp + fn, 1), 4),
        "tags_planted": tp + fn, "tags_found": tp + fp,
        "leak_examples": examples,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-feed", type=int, default=150)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    report = run(args.seed, args.per_feed)
    report["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"{report['records']} records, {report['planted']} planted details in "
          f"{report['kinds']} kinds; texts released per mode: {report['released_texts_per_mode']}")
    print(f"{'kind':<24}" + "".join(f"{m:>12}" for m in MODES) + f"{'planted':>9}")
    for k in KINDS:
        print(f"{k:<24}" + "".join(f"{report['leaks_per_mode_and_kind'][m][k]:>12}"
                                   for m in MODES) + f"{report['planted_per_kind'].get(k, 0):>9}")
    print(f"leaks: {report['leaks_total']}")
    print(f"vocabulary keeps {report['vocabulary_analyst_words_kept']:.1%} of "
          f"{report['vocabulary_analyst_words']} analyst words; tags precision "
          f"{report['tags_precision']:.1%}, recall {report['tags_recall']:.1%}")
    out = Path(__file__).parent / "results" / "free_text_leaks.json"
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
