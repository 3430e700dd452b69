"""Reconciliation and status from durable facts: pure, no broker."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.core.audit.reconcile import CSV_COLUMNS, reconcile, to_csv
from services.core.ops.status import ProtocolRow, build_status, render_status, reviews_due
from services.ingest.records import rejected_source_id

T0 = datetime(2026, 3, 1, tzinfo=UTC)
T1 = T0 + timedelta(days=1)


def env(sid: str, rid: str, at: datetime = T0 + timedelta(hours=1),
        partner: str = "herts-police", feed: str = "police") -> dict[str, object]:
    return {"hub_record_id": rid, "partner": partner, "feed": feed, "source_id": sid,
            "received_at": at.isoformat()}


def ev(kind: str, rid: str, partner: str = "herts-police", feed: str = "police",
       **kw: object) -> dict[str, object]:
    return {"kind": kind, "hub_record_id": rid, "partner": partner, "feed": feed,
            "recipient": kw.get("recipient"), "protocol": kw.get("protocol", "police@1"),
            "detail": kw.get("detail", {})}


ENVELOPES = [env("P-8", "r8"), env("P-1", "r1"), env("P-2", "r2"), env("P-3", "r3"),
             env("P-4", "r4"), env("P-5", "r5"),
             env("P-1", "r1", at=T0 + timedelta(hours=2)),  # a resend
             env("P-6", "r6", at=T1 + timedelta(hours=1)),  # outside the period
             env("F-1", "f1", partner="herts-fire", feed="fire")]  # another partner
LETTERS: list[dict[str, Any]] = [
           {"rejection_id": "x1", "rejected_at": (T0 + timedelta(hours=3)).isoformat(),
            "partner": "herts-police", "feed": "police", "source_id": "P-9", "stage": "ingest",
            "problems": [{"pointer": "/category", "reason": "Input should be 'burglary'"}],
            "replayed": ["r7"]},
           {"rejection_id": "u3", "rejected_at": (T0 + timedelta(hours=3)).isoformat(),
            "partner": "herts-police", "feed": "police", "source_id": "P-3",
            "hub_record_id": "r3", "stage": "depersonalise",
            "problems": [{"pointer": "/sealed", "reason": "unreadable: shredded"}]},
           {"rejection_id": "u8", "rejected_at": (T0 + timedelta(hours=3)).isoformat(),
            "partner": "herts-police", "feed": "police", "source_id": "P-8",
            "hub_record_id": "r8", "stage": "depersonalise",
            "problems": [{"pointer": "/sealed", "reason": "unreadable: key shredded"}]},
           {"rejection_id": "s1", "rejected_at": (T0 + timedelta(hours=3)).isoformat(),
            "partner": "herts-police", "feed": "police", "stage": "router",
            "hub_record_id": "r-unknown", "problems": []},
           {"rejection_id": "x2", "rejected_at": (T0 + timedelta(hours=3)).isoformat(),
            "partner": "herts-fire", "feed": "fire", "source_id": "F-9", "stage": "ingest",
            "problems": []}]
EVENTS = [ev("disclosure", "r1", recipient="grp-a"), ev("disclosure", "r1", recipient="grp-b"),
          ev("generalised", "r1", detail={"gate": "generalise", "fields": ["victim_dob"]}),
          ev("unrouted", "r2", detail={"reason": "no_area"}),
          ev("withheld", "r3", protocol=None, detail={"cause": "expired"}),
          ev("disclosure", "r5", recipient="grp-a"), ev("config", "r5")]


def test_given_every_outcome_then_each_source_id_gets_its_own() -> None:
    rec = reconcile("herts-police", T0, T1, envelopes=ENVELOPES, letters=LETTERS, events=EVENTS)
    got = {r.source_id: r.outcome for r in rec.rows}
    assert got == {"P-1": "delivered", "P-2": "unrouted", "P-3": "withheld", "P-4": "pending",
                   "P-5": "delivered", "P-8": "withheld", "P-9": "rejected"}
    assert rec.counts == {"accepted": 6, "rejected": 1, "delivered": 2, "unrouted": 1,
                          "withheld": 2, "pending": 1, "generalised": 1}
    assert rec.per_group == {"grp-a": 2, "grp-b": 1}


def test_given_a_resend_then_the_record_is_listed_once_at_its_first_arrival() -> None:
    rec = reconcile("herts-police", T0, T1, envelopes=ENVELOPES, letters=[], events=[])
    p1 = [r for r in rec.rows if r.source_id == "P-1"]
    assert len(p1) == 1
    assert p1[0].received_at == T0 + timedelta(hours=1)


def test_csv_has_a_line_per_record_with_groups_and_reasons() -> None:
    rec = reconcile("herts-police", T0, T1, envelopes=ENVELOPES, letters=LETTERS, events=EVENTS)
    rows = list(csv.DictReader(io.StringIO(to_csv(rec))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by = {r["source_id"]: r for r in rows}
    assert by["P-1"]["delivered_to"] == "grp-a;grp-b"
    assert by["P-1"]["generalised"] == "police@1:generalise"
    assert by["P-2"]["unrouted_reason"] == "no_area"
    assert by["P-3"]["withheld_cause"] == "expired"
    assert by["P-3"]["rejection_id"] == "u3"  # a later stage's letter, on the accepted row
    assert by["P-8"]["withheld_cause"] == "unreadable"
    assert by["P-9"]["rejection_reasons"].startswith("/category:")
    assert by["P-9"]["replayed_as"] == "r7"


def test_given_a_formula_like_source_id_then_the_csv_cell_is_defused() -> None:
    rec = reconcile("p", T0, T1, envelopes=[env("=HYPERLINK(1)", "r1", partner="p")],
                    letters=[], events=[])
    assert to_csv(rec).splitlines()[1].startswith("'=HYPERLINK(1)")


def test_given_a_usable_source_id_then_a_dead_letter_may_carry_it() -> None:
    assert rejected_source_id({"source_id": "P-1"}, [("/category", "bad")]) == "P-1"
    assert rejected_source_id({"source_id": "P-1"}, [("/source_id", "too long")]) is None
    assert rejected_source_id({"source_id": 7}, []) is None
    assert rejected_source_id({"source_id": "x" * 129}, []) is None
    assert rejected_source_id(["P-1"], []) is None


def test_status_lists_every_partner_and_group_with_durable_counts() -> None:
    rows = [ProtocolRow("police@1", True, date(2026, 3, 20), False),
            ProtocolRow("fire@1", False, date(2026, 2, 1), True, ("expired 2026-02-01",))]
    st = build_status(partners={"herts-police": ["police"], "herts-fire": ["fire"],
                                "quiet-dc": ["council"]},
                      groups=["grp-a", "grp-b", "grp-silent"], feeds=["police", "fire", "council"],
                      envelopes=ENVELOPES, letters=LETTERS, events=EVENTS, protocols=rows,
                      today=date(2026, 3, 1))
    police = st.partners["herts-police"]
    assert (police.accepted, police.rejected, police.unrouted, police.withheld,
            police.generalised) == (7, 1, 1, 2, 1)  # r3 by its event, r8 by its letter
    assert st.partners["quiet-dc"].accepted == 0
    assert {g: r.deliveries for g, r in st.groups.items()} == {"grp-a": 2, "grp-b": 1,
                                                               "grp-silent": 0}
    out = render_status(st)
    assert "grp-silent" in out
    assert "quiet-dc" in out
    assert "fire@1" in out
    assert "overdue by 28 days" in out
    assert "due in 19 days" in out


def test_reviews_due_lists_those_within_the_window_soonest_first() -> None:
    rows = [ProtocolRow("a@1", True, date(2026, 6, 1), False),
            ProtocolRow("b@1", True, date(2026, 3, 10), False),
            ProtocolRow("c@1", True, date(2026, 2, 1), True)]
    assert [(p.ref, d) for p, d in reviews_due(rows, date(2026, 3, 1), 30)] == [
        ("c@1", -28), ("b@1", 9)]


def test_given_the_gate_withheld_the_place_then_unrouted_says_so_not_no_area() -> None:
    events = [ev("unrouted", "r2", detail={"reason": "no_area"}),
              ev("generalised", "r2", detail={"gate": "suppress", "fields": ["location"]}),
              # No location to begin with: the gate withheld its age band, not its place.
              ev("unrouted", "r4", detail={"reason": "no_area"}),
              ev("generalised", "r4", detail={"gate": "suppress", "fields": ["victim_dob"]})]
    rec = reconcile("herts-police", T0, T1, envelopes=ENVELOPES, letters=[], events=events)
    by = {r.source_id: r for r in rec.rows}
    assert by["P-2"].unrouted_reason == "location_withheld"
    assert by["P-4"].unrouted_reason == "no_area"
