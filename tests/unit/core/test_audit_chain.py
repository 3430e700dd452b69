"""The disclosure audit chain: tamper evidence, checkpoints, resumption, queries, bundles.

Over 400 lines because tamper cases, checkpoints, resumption, queries and bundles share one set of
chain fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.audit.bundle import export_bundle, public_key_fingerprint, verify_bundle
from services.core.audit.chain import (
    GENESIS_HASH,
    AuditEvent,
    ChainWriter,
    Checkpoint,
    event_hash,
    make_checkpoint,
    query,
    verify_chain,
    verify_checkpoint,
)
from services.core.audit.errors import AuditError
from services.core.crypto.canonical import canonical_bytes
from services.core.crypto.errors import CryptoError
from services.core.errors import HubError

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
GROUPS = ("asb-tasking", "dv-marac", "youth-panel")
PROTOCOLS = ("asb-share@2", "dv-share@1", "asb-share@3")


class StepClock:
    """A clock that moves one minute per reading, so event times are known and distinct."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        t = self.now
        self.now += timedelta(minutes=1)
        return t


def disclosure(i: int) -> dict[str, Any]:
    return {
        "kind": "disclosure",
        "hub_record_id": f"rec-{i % 4}",
        "partner": "herts-police",
        "feed": "asb",
        "recipient": GROUPS[i % 3],
        "protocol": PROTOCOLS[i % 3],
        "lawful_basis": "Crime and Disorder Act 1998 s115",
        "fields": {"category": "keep", "ward_code": "keep", "occurred_at": "round_to_hour"},
        "payload_digest": hashlib.sha256(f"payload {i}".encode()).hexdigest(),
    }


def build(n: int, writer: ChainWriter | None = None) -> list[AuditEvent]:
    w = writer or ChainWriter(clock=StepClock())
    return [w.append(**disclosure(i)) for i in range(n)]


def keys() -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    sk = Ed25519PrivateKey.generate()
    return sk, {"hub-1": sk.public_key()}


def forged_after(events: list[AuditEvent], k: int) -> AuditEvent:
    """A well-formed event claiming slot ``k``: what someone with the chain but no key can make."""
    head = events[k - 1].hash if k else GENESIS_HASH
    w = ChainWriter(head, k, clock=StepClock(T0 + timedelta(days=1)))
    return w.append(**{**disclosure(k), "recipient": "not-entitled-group"})


def rehashed(ev: AuditEvent, **changes: Any) -> AuditEvent:
    changed = ev.model_copy(update=changes)
    return changed.model_copy(update={"hash": event_hash(changed)})


# --- canonical bytes -------------------------------------------------------------------------


def test_given_the_same_content_in_any_key_order_then_canonical_bytes_are_identical() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "x"]}) == canonical_bytes(
        {"a": [True, None, "x"], "b": 1}) == b'{"a":[true,null,"x"],"b":1}'


def test_given_datetimes_in_any_zone_then_canonical_bytes_write_utc_with_z() -> None:
    bst = datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert canonical_bytes({"at": bst}) == b'{"at":"2024-05-01T09:00:00.000000Z"}'


def test_given_non_ascii_text_then_canonical_bytes_keep_it_as_utf8() -> None:
    assert canonical_bytes("Ysgol Gymraeg – café") == '"Ysgol Gymraeg – café"'.encode()


def test_given_floats_then_canonical_bytes_format_them_as_rfc_8785_does() -> None:
    assert canonical_bytes([1.0, 0.5, 1e21, 1e-7, -0.0, 0.000001]) == (
        b"[1,0.5,1e+21,1e-7,0,0.000001]")


@pytest.mark.parametrize("value", [datetime(2024, 5, 1), {1: "a"}, {"a"}, b"x", float("nan")])
def test_given_a_value_without_one_canonical_form_then_canonical_bytes_refuse_it(
        value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_bytes(value)


def test_given_an_event_then_its_hash_is_sha256_of_the_documented_canonical_json() -> None:
    # Written out by hand, so a change to the hashing recipe an inspector relies on fails here.
    ev = ChainWriter(clock=StepClock()).append(kind="config", detail={"action": "started"})
    expected = (
        '{"at":"2024-05-01T09:00:00.000000Z","detail":{"action":"started"},"feed":null,'
        '"fields":{},"hub_record_id":null,"kind":"config","lawful_basis":null,"partner":null,'
        '"payload_digest":null,"prev_hash":"' + "0" * 64 + '","protocol":null,'
        '"recipient":null,"seq":0}'
    )
    assert ev.hash == hashlib.sha256(expected.encode()).hexdigest()


# --- writing the chain ------------------------------------------------------------------------


def test_given_a_new_writer_then_events_are_numbered_from_zero_and_linked_from_genesis() -> None:
    events = build(3)
    assert [e.seq for e in events] == [0, 1, 2]
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert verify_chain(events, [], {}).ok


def test_given_an_event_then_it_cannot_be_changed_in_place() -> None:
    ev = build(1)[0]
    with pytest.raises(ValueError, match="frozen"):
        ev.recipient = "someone-else"


def test_given_a_disclosure_without_a_protocol_then_append_refuses_and_the_chain_stays_put(
) -> None:
    w = ChainWriter(clock=StepClock())
    build(2, w)
    head, nxt = w.head_hash, w.next_seq
    with pytest.raises(AuditError, match="protocol"):
        w.append(**{**disclosure(9), "protocol": None})
    assert isinstance(AuditError("x"), HubError)
    assert (w.head_hash, w.next_seq) == (head, nxt)


@pytest.mark.parametrize("bad", [
    {"kind": "config", "detail": {}},                                  # no action
    {"kind": "alert", "detail": {"score": float("nan")}},              # unhashable
    {**disclosure(0), "protocol": "asb-share"},                        # no version
    {**disclosure(0), "at": datetime(2024, 5, 1)},                     # naive time
    {**disclosure(0), "payload_digest": "not-a-digest"},
])
def test_given_an_incomplete_or_unhashable_event_then_append_refuses_it(
        bad: dict[str, Any]) -> None:
    with pytest.raises(AuditError):
        ChainWriter().append(**bad)


# Strings that look like the hash member the writer splices (issue 12: one canonicalisation
# gives both the hash and the message bytes), in every field that can hold text.
_LOOKALIKE = st.sampled_from(['"hash":"' + GENESIS_HASH + '"', ',"hash":"' + GENESIS_HASH + '"',
                              "hash", GENESIS_HASH, '\\"', "é\u2028"])
_TEXT = st.lists(st.one_of(st.characters(exclude_categories=["Cs"]), _LOOKALIKE),
                 min_size=1, max_size=4).map("".join)
_DETAIL = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _TEXT,
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(_TEXT, st.just("hash")), inner,
                                            max_size=4)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(detail=st.dictionaries(st.one_of(_TEXT, st.just("hash")), _DETAIL, max_size=4),
       partner=_TEXT, recipient=_TEXT, fields=st.dictionaries(_TEXT, _TEXT, max_size=3))
def test_given_any_event_then_the_sealed_message_is_its_canonical_json_and_hash(
        detail: dict[str, Any], partner: str, recipient: str, fields: dict[str, str]) -> None:
    w = ChainWriter(clock=StepClock())
    first = w.append(**disclosure(0))
    ev, value = w.append_message(kind="alert", partner=partner, recipient=recipient,
                                 fields=fields, detail=detail)
    assert value == canonical_bytes(ev)
    assert ev.hash == event_hash(ev)
    assert ev.prev_hash == first.hash


def test_given_a_writer_resumed_from_the_last_event_then_it_continues_a_valid_chain() -> None:
    first = build(4)
    # A restarted service only has what it stored: the last event, as JSON.
    stored = json.loads(first[-1].model_dump_json())
    resumed = ChainWriter.resume(AuditEvent.model_validate(stored),
                                 clock=StepClock(T0 + timedelta(hours=1)))
    more = [resumed.append(**disclosure(i)) for i in range(4, 7)]
    assert more[0].seq == 4
    assert more[0].prev_hash == first[-1].hash
    assert verify_chain(first + more, [], {}).ok
    assert ChainWriter(first[-1].hash, 4).append(**disclosure(4)).prev_hash == first[-1].hash


def test_given_a_corrupted_last_event_then_resuming_from_it_is_refused() -> None:
    last = build(2)[-1].model_copy(update={"recipient": "someone-else"})
    with pytest.raises(AuditError, match="does not match"):
        ChainWriter.resume(last)


@pytest.mark.parametrize(("head", "next_seq"), [(GENESIS_HASH, 5), ("a" * 64, 0),
                                                ("A" * 64, 3), ("abc", 3), ("a" * 64, -1)])
def test_given_an_inconsistent_resume_state_then_the_writer_refuses_to_start(
        head: str, next_seq: int) -> None:
    with pytest.raises(AuditError):
        ChainWriter(head, next_seq)


def test_given_concurrent_appends_then_the_chain_stays_a_single_line() -> None:
    w = ChainWriter()
    out: list[AuditEvent] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(50):
            ev = w.append(**disclosure(i))
            with lock:
                out.append(ev)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.sort(key=lambda e: e.seq)
    assert [e.seq for e in out] == list(range(200))
    assert verify_chain(out, [], {}).ok


# --- tamper evidence --------------------------------------------------------------------------


def test_given_an_intact_chain_as_json_then_verify_chain_reports_ok() -> None:
    sk, pub = keys()
    events = build(6)
    cps = [make_checkpoint(events[2], sk, "hub-1"), make_checkpoint(events[5], sk, "hub-1")]
    as_json = [json.loads(e.model_dump_json()) for e in events]
    report = verify_chain(as_json, [json.loads(c.model_dump_json()) for c in cps], pub)
    assert report.ok, report.reason
    assert (report.events_checked, report.checkpoints_checked) == (6, 2)
    assert report.head_hash == events[-1].hash
    assert report.first_bad_position is None


def test_given_an_edited_event_then_verify_reports_its_position() -> None:
    events = build(6)
    events[3] = events[3].model_copy(update={"recipient": "not-entitled-group"})
    report = verify_chain(events, [], {})
    assert not report.ok
    assert report.first_bad_position == 3
    assert "edited" in str(report.reason)


def test_given_an_edited_line_of_json_then_verify_reports_its_position() -> None:
    rows = [json.loads(e.model_dump_json()) for e in build(5)]
    rows[2]["fields"]["name"] = "keep"  # a personal field smuggled into the record of release
    assert verify_chain(rows, [], {}).first_bad_position == 2


def test_given_an_edited_and_rehashed_event_then_the_broken_link_shows_at_the_next_position(
) -> None:
    events = build(6)
    events[2] = rehashed(events[2], recipient="not-entitled-group")
    report = verify_chain(events, [], {})
    assert not report.ok
    assert report.first_bad_position == 3
    assert "does not link" in str(report.reason)


def test_given_a_deleted_event_then_verify_reports_the_gap_position() -> None:
    events = build(6)
    del events[2]
    report = verify_chain(events, [], {})
    assert not report.ok
    assert report.first_bad_position == 2
    assert "expected seq 2, found 3" in str(report.reason)


def test_given_the_first_event_deleted_then_verify_reports_position_zero() -> None:
    assert verify_chain(build(4)[1:], [], {}).first_bad_position == 0


def test_given_the_last_event_deleted_then_the_checkpoint_reveals_the_truncation() -> None:
    sk, pub = keys()
    events = build(5)
    cp = make_checkpoint(events[-1], sk, "hub-1")
    report = verify_chain(events[:-1], [cp], pub)
    assert not report.ok
    assert report.first_bad_position == 4
    assert report.bad_checkpoint == 0
    assert "removed from the end" in str(report.reason)


def test_given_two_events_swapped_then_verify_reports_the_first_swapped_position() -> None:
    events = build(6)
    events[2], events[3] = events[3], events[2]
    report = verify_chain(events, [], {})
    assert not report.ok
    assert report.first_bad_position == 2


def test_given_an_event_moved_to_the_end_then_verify_reports_where_it_was_taken_from() -> None:
    events = build(6)
    events.append(events.pop(1))
    assert verify_chain(events, [], {}).first_bad_position == 1


@pytest.mark.parametrize("k", [0, 2, 4])
def test_given_a_forged_event_inserted_then_verify_reports_its_position(k: int) -> None:
    events = build(6)
    events.insert(k, forged_after(events, k))
    report = verify_chain(events, [], {})
    assert not report.ok
    assert report.first_bad_position == k
    assert "inserted" in str(report.reason)


def test_given_a_forged_rival_to_the_last_event_then_the_checkpoint_tells_which_is_genuine(
) -> None:
    sk, pub = keys()
    events = build(6)
    cp = make_checkpoint(events[-1], sk, "hub-1")
    events.insert(5, forged_after(events, 5))
    # With nothing after the two rivals, the chain alone cannot tell them apart...
    assert verify_chain(events, [], {}).first_bad_position == 6
    # ...but the signed head can.
    assert verify_chain(events, [cp], pub).first_bad_position == 5


def test_given_a_copy_of_an_event_inserted_then_verify_reports_the_copy() -> None:
    events = build(6)
    events.insert(4, events[1])
    assert verify_chain(events, [], {}).first_bad_position == 4


def test_given_a_malformed_entry_then_verify_reports_it_instead_of_raising() -> None:
    rows: list[Any] = [json.loads(e.model_dump_json()) for e in build(4)]
    rows[1]["extra"] = "unhashed"
    rows[3] = "not json"
    report = verify_chain(rows, [], {})
    assert not report.ok
    assert report.first_bad_position == 1
    assert "malformed" in str(report.reason)


def test_given_a_rewrite_that_rehashes_everything_then_the_signed_checkpoint_catches_it() -> None:
    sk, pub = keys()
    events = build(9)
    cps = [make_checkpoint(events[i], sk, "hub-1") for i in (2, 5, 8)]
    # Rewrite from seq 3 on, recomputing every hash: the chain alone is consistent again.
    w = ChainWriter(events[2].hash, 3, clock=StepClock())
    rewritten = events[:3] + [w.append(**{**disclosure(i), "recipient": "dv-marac"})
                              for i in range(3, 9)]
    assert verify_chain(rewritten, [], {}).ok
    report = verify_chain(rewritten, cps, pub)
    assert not report.ok
    assert report.first_bad_position == 5
    assert report.bad_checkpoint == 1
    assert "after seq 2" in str(report.reason)


@settings(max_examples=120, deadline=None)
@given(n=st.integers(3, 10), op=st.sampled_from(["edit", "rehash", "delete", "swap", "insert",
                                                 "copy"]),
       data=st.data())
def test_given_any_single_tampering_then_verify_reports_the_first_position_it_shows(
        n: int, op: str, data: st.DataObject) -> None:
    sk, pub = keys()
    events = build(n)
    cps = [make_checkpoint(events[-1], sk, "hub-1")]  # as the hub does at every flush
    k = data.draw(st.integers(0, n - 2 if op == "swap" else n - 1), label="k")
    if op == "edit":
        events[k] = events[k].model_copy(update={"lawful_basis": "none"})
        expected = k
    elif op == "rehash":
        events[k] = rehashed(events[k], lawful_basis="none")
        expected = k + 1 if k < n - 1 else k
    elif op == "delete":
        del events[k]
        expected = k
    elif op == "swap":
        events[k], events[k + 1] = events[k + 1], events[k]
        expected = k
    elif op == "insert":
        events.insert(k, forged_after(events, k))
        expected = k
    else:
        j = data.draw(st.integers(0, n - 1), label="copied")
        events.insert(k, events[j])
        expected = j + 1 if k in (j, j + 1) else k
    report = verify_chain(events, cps, pub)
    assert not report.ok
    assert report.first_bad_position == expected, report.reason


# --- checkpoints ------------------------------------------------------------------------------


def test_given_a_valid_checkpoint_then_it_verifies_and_survives_json() -> None:
    sk, pub = keys()
    ev = build(3)[-1]
    cp = make_checkpoint(ev, sk, "hub-1", at=T0)
    verify_checkpoint(cp, pub, head=ev)  # raises on a bad signature or head
    again = Checkpoint.model_validate_json(cp.model_dump_json())
    assert again == cp
    verify_checkpoint(again, pub, head=ev)


def test_given_a_checkpoint_signed_by_another_key_then_it_is_rejected() -> None:
    _, pub = keys()
    events = build(4)
    forged = make_checkpoint(events[-1], Ed25519PrivateKey.generate(), "hub-1")
    with pytest.raises(CryptoError, match="signature"):
        verify_checkpoint(forged, pub)
    report = verify_chain(events, [forged], pub)
    assert not report.ok
    assert report.bad_checkpoint == 0
    # The events are not implicated by a forged checkpoint.
    assert report.first_bad_position is None


def test_given_a_checkpoint_with_a_changed_head_hash_then_it_is_rejected() -> None:
    sk, pub = keys()
    events = build(4)
    cp = make_checkpoint(events[1], sk, "hub-1")
    moved = cp.model_copy(update={"head_hash": events[2].hash, "seq": 2})
    with pytest.raises(CryptoError):
        verify_checkpoint(moved, pub)
    report = verify_chain(events, [cp, moved], pub)
    assert not report.ok
    assert report.bad_checkpoint == 1


def test_given_a_genuine_checkpoint_that_disagrees_with_the_chain_then_it_is_reported() -> None:
    sk, pub = keys()
    events = build(4)
    other = build(4, ChainWriter(clock=StepClock(T0 + timedelta(days=2))))
    with pytest.raises(CryptoError, match="signs head"):
        verify_checkpoint(make_checkpoint(other[2], sk, "hub-1"), pub, head=events[2])
    report = verify_chain(events, [make_checkpoint(other[2], sk, "hub-1")], pub)
    assert not report.ok
    assert report.first_bad_position == 2
    assert report.bad_checkpoint == 0


def test_given_a_checkpoint_from_an_unknown_key_then_it_is_rejected() -> None:
    sk, _ = keys()
    events = build(3)
    cp = make_checkpoint(events[-1], sk, "retired-key")
    with pytest.raises(CryptoError, match="unknown key"):
        verify_checkpoint(cp, {})
    report = verify_chain(events, [cp], {})
    assert not report.ok
    assert "unknown key" in str(report.reason)


def test_given_a_checkpoint_with_a_garbled_signature_then_it_is_rejected() -> None:
    sk, pub = keys()
    events = build(3)
    cp = make_checkpoint(events[-1], sk, "hub-1").model_copy(update={"signature": "!!"})
    assert not verify_chain(events, [cp], pub).ok


# --- queries ----------------------------------------------------------------------------------


@pytest.fixture
def mixed() -> list[AuditEvent]:
    w = ChainWriter(clock=StepClock())
    events = build(6, w)
    events.append(w.append(kind="config", detail={"action": "protocol_applied",
                                                  "protocol": "asb-share@3"}))
    events.append(w.append(kind="alert", recipient="asb-tasking", detail={"ward": "E05004781"}))
    return events


def test_given_a_record_then_query_answers_who_received_it_when_and_under_what(
        mixed: list[AuditEvent]) -> None:
    got = query(mixed, record="rec-1")
    assert [(e.seq, e.recipient, e.protocol) for e in got] == [
        (1, "dv-marac", "dv-share@1"), (5, "youth-panel", "asb-share@3")]


def test_given_a_group_then_query_returns_only_what_that_group_received(
        mixed: list[AuditEvent]) -> None:
    assert [e.seq for e in query(mixed, group="asb-tasking")] == [0, 3, 7]
    assert [e.seq for e in query(mixed, group="asb-tasking", kind="disclosure")] == [0, 3]


def test_given_a_protocol_then_query_matches_that_version_or_all_versions(
        mixed: list[AuditEvent]) -> None:
    assert [e.seq for e in query(mixed, protocol="asb-share@3")] == [2, 5, 6]
    assert [e.seq for e in query(mixed, protocol="asb-share")] == [0, 2, 3, 5, 6]


def test_given_a_time_window_then_query_treats_it_as_half_open(
        mixed: list[AuditEvent]) -> None:
    got = query(mixed, since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
    assert [e.seq for e in got] == [2, 3]
    bst = timezone(timedelta(hours=1))
    assert query(mixed, since=datetime(2024, 5, 1, 10, 7, tzinfo=bst)) == [mixed[7]]


def test_given_filters_combined_and_json_input_then_query_applies_them_all(
        mixed: list[AuditEvent]) -> None:
    rows = [json.loads(e.model_dump_json()) for e in mixed]
    got = query(rows, record="rec-0", group="asb-tasking", kind="disclosure")
    assert [e.seq for e in got] == [0]
    assert query(rows, record="rec-0", group="youth-panel") == []


def test_given_a_naive_time_then_query_refuses_it(mixed: list[AuditEvent]) -> None:
    with pytest.raises(AuditError, match="timezone"):
        query(mixed, since=datetime(2024, 5, 1))


# --- bundles ----------------------------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, Ed25519PrivateKey, list[AuditEvent]]:
    sk = Ed25519PrivateKey.generate()
    events = build(8)
    cps = [make_checkpoint(events[i], sk, "hub-1") for i in (3, 7)]
    export_bundle(events, cps, sk, "hub-1", tmp_path / "b")
    return tmp_path / "b", sk, events


def test_given_an_exported_bundle_then_it_verifies_offline(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, events = bundle
    assert sorted(p.name for p in d.iterdir()) == [
        "checkpoints.jsonl", "events.jsonl", "manifest.json", "manifest.sig"]
    report = verify_bundle(d, trusted_public_key=sk.public_key())
    assert report.ok, report.reason
    assert (report.events_checked, report.checkpoints_checked) == (8, 2)
    assert report.head_hash == events[-1].hash
    assert report.signer_fingerprint == public_key_fingerprint(sk.public_key())
    assert verify_bundle(d).ok  # with only the embedded key: intact, but check the fingerprint
    manifest = json.loads((d / "manifest.json").read_bytes())
    assert (manifest["event_count"], manifest["first_seq"], manifest["last_seq"]) == (8, 0, 7)


def test_given_a_bundle_then_the_manifest_signature_covers_the_exact_file_bytes(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, _ = bundle
    body = (d / "manifest.json").read_bytes()
    assert body == canonical_bytes(json.loads(body))
    sk.public_key().verify(base64.b64decode((d / "manifest.sig").read_text()), body)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_given_a_bundle_then_openssl_alone_can_check_the_manifest(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]], tmp_path: Path) -> None:
    d, _, _ = bundle
    manifest = json.loads((d / "manifest.json").read_bytes())
    (tmp_path / "key.pem").write_text(manifest["public_key_pem"])
    (tmp_path / "sig.bin").write_bytes(base64.b64decode((d / "manifest.sig").read_text()))
    run = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "key.pem"),
         "-rawin", "-in", str(d / "manifest.json"), "-sigfile", str(tmp_path / "sig.bin")],
        capture_output=True, text=True, check=False)
    if "rawin" in run.stderr and run.returncode:
        pytest.skip("this openssl cannot verify Ed25519 over raw input")
    assert run.returncode == 0, run.stderr


def test_given_an_edited_line_in_events_jsonl_then_the_bundle_fails_at_that_position(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, _ = bundle
    lines = (d / "events.jsonl").read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"herts-police"', b'"other-force"')
    (d / "events.jsonl").write_bytes(b"".join(lines))
    report = verify_bundle(d, trusted_public_key=sk.public_key())
    assert not report.ok
    assert report.first_bad_position == 5
    assert "events.jsonl differs from the manifest" in str(report.reason)


def test_given_a_changed_manifest_then_the_bundle_fails(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, _ = bundle
    manifest = json.loads((d / "manifest.json").read_bytes())
    manifest["event_count"] = 7
    (d / "manifest.json").write_bytes(canonical_bytes(manifest))
    report = verify_bundle(d, trusted_public_key=sk.public_key())
    assert not report.ok
    assert "signature" in str(report.reason)


def test_given_a_dropped_checkpoint_line_then_the_bundle_fails(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, _ = bundle
    lines = (d / "checkpoints.jsonl").read_bytes().splitlines(keepends=True)
    (d / "checkpoints.jsonl").write_bytes(lines[0])
    report = verify_bundle(d, trusted_public_key=sk.public_key())
    assert not report.ok
    assert "checkpoints.jsonl differs" in str(report.reason)


def test_given_a_bundle_resigned_with_another_key_then_the_trusted_key_rejects_it(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]], tmp_path: Path) -> None:
    _, sk, events = bundle
    impostor = Ed25519PrivateKey.generate()
    doctored = [events[0], rehashed(events[1], recipient="not-entitled-group")]
    export_bundle(doctored, [], impostor, "hub-1", tmp_path / "fake")
    assert verify_bundle(tmp_path / "fake").ok  # self-consistent, so only a pinned key helps
    report = verify_bundle(tmp_path / "fake", trusted_public_key=sk.public_key())
    assert not report.ok
    assert "different signing key" in str(report.reason)


def test_given_a_missing_or_garbled_file_then_verify_bundle_reports_without_raising(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, _, _ = bundle
    (d / "manifest.sig").write_text("not base64 at all!")
    assert "manifest unreadable" in str(verify_bundle(d).reason)
    (d / "manifest.json").write_bytes(b"{")
    assert not verify_bundle(d).ok
    (d / "checkpoints.jsonl").unlink()
    assert "missing checkpoints.jsonl" in str(verify_bundle(d).reason)
    assert not verify_bundle(d.parent / "nowhere").ok


def test_given_a_directory_holding_a_bundle_then_export_refuses_to_overwrite_it(
        bundle: tuple[Path, Ed25519PrivateKey, list[AuditEvent]]) -> None:
    d, sk, events = bundle
    with pytest.raises(AuditError, match="already holds"):
        export_bundle(events, [], sk, "hub-1", d)


def test_given_checkpoints_from_a_rotated_key_then_the_bundle_carries_that_key_too(
        tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    events = build(4)
    cps = [make_checkpoint(events[1], old, "hub-2023"), make_checkpoint(events[3], new, "hub-1")]
    with pytest.raises(AuditError, match="hub-2023"):
        export_bundle(events, cps, new, "hub-1", tmp_path / "x")
    export_bundle(events, cps, new, "hub-1", tmp_path / "y",
                  checkpoint_keys={"hub-2023": old.public_key()})
    assert verify_bundle(tmp_path / "y", trusted_public_key=new.public_key()).ok


def test_given_a_segment_of_the_chain_then_its_bundle_verifies_from_its_anchor(
        tmp_path: Path) -> None:
    sk = Ed25519PrivateKey.generate()
    events = build(10)
    export_bundle(events[4:], [make_checkpoint(events[9], sk, "hub-1")], sk, "hub-1", tmp_path)
    report = verify_bundle(tmp_path, trusted_public_key=sk.public_key())
    assert report.ok, report.reason
    assert report.events_checked == 6
    assert not verify_chain(events[4:], [], {}).ok  # without its anchor it is a gap


def test_given_an_empty_chain_then_its_bundle_still_verifies(tmp_path: Path) -> None:
    sk = Ed25519PrivateKey.generate()
    export_bundle([], [], sk, "hub-1", tmp_path, created_at=T0)
    report = verify_bundle(tmp_path, trusted_public_key=sk.public_key())
    assert report.ok
    assert report.events_checked == 0
    assert report.head_hash is None
