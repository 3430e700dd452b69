"""What depersonalise must account for, decided from a stage result (pure; issue 16).

A record no live protocol releases (``blocked``) is *withheld*; one the risk gate coarsened is
*generalised*. Both become audit facts (``services/core/audit/accounting.py``) so the partner's
reconciliation report can say what happened to each of its records after a restart too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.envelope import Envelope
from services.core.audit.accounting import gate_facts, withheld_fact
from services.depersonalise.stage import StageResult


def accounting_facts(env: Envelope, result: StageResult, *,
                     at: datetime | None = None) -> list[dict[str, Any]]:
    """Facts for ``result``: one ``withheld`` when nothing was released, else one
    ``generalised`` per protocol whose gate did not release the record as it was."""
    if result.blocked:
        return [withheld_fact(env.hub_record_id, env.partner, env.feed, result.blocked,
                              result.detail or "", at=at)]
    return gate_facts(env.hub_record_id, env.partner, env.feed, result.gate,
                      result.gated_fields, at=at)
