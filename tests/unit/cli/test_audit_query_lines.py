"""What `s115hub audit query` prints per event: an access event names who read what."""

from __future__ import annotations

from services.cli.audit_cmds import event_line
from services.core.audit.chain import AuditEvent
from services.core.audit.facts import access_fact


def test_an_access_event_line_names_the_member_and_what_was_read() -> None:
    fact = access_fact("grp-halton", "ann.analyst@halton.gov.uk", "pack.html",
                       detail={"from": "2026-11-01"})
    body = {k: v for k, v in fact.items() if k != "fact_id"}
    ev = AuditEvent.model_validate({**body, "seq": 7, "prev_hash": "0" * 64, "hash": "1" * 64})
    line = event_line(ev)
    assert "access" in line
    assert "-> grp-halton" in line
    assert line.endswith("ann.analyst@halton.gov.uk read pack.html")
