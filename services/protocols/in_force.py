"""Turn the config topic's state into the protocols in force. A protocol text that fails to parse
is reported, never half-applied: its records stay blocked.

Officer keys come from the pinned anchor file (services/core/crypto/officer_trust.py), checked
against the fingerprint in the county configuration, never from the topic's ``officer/`` entries: a
key that arrived only on the topic verifies no signature, so it cannot make a protocol live."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import AnchorFile, topic_only_keys, trusted_keys
from services.core.errors import HubError
from services.core.ops.status import ProtocolRow
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import parse_protocol


def protocol_set_of(state: ConfigState, anchors: AnchorFile | None = None
                    ) -> tuple[ProtocolSet, dict[str, str]]:
    """The protocols of ``state`` and, by ref, the problems of the texts that were refused
    (``officers``: why officer keys are not trusted). Without ``anchors`` no key is trusted, so
    nothing is live: enough for callers that only read the protocols' terms."""
    errors: dict[str, str] = {}
    pinned = state.county.officer_keys_sha256 if state.county else None
    trust = (anchors.trust(pinned) if anchors is not None
             else trusted_keys(None, pinned, missing="no officer key file given"))
    problems = list(trust.problems)
    stray = topic_only_keys(trust.keys, state.officers)
    if stray:
        problems.append(f"officer keys only on the config topic, not trusted: {', '.join(stray)}")
    if problems:
        errors["officers"] = "; ".join(problems)
    pset = ProtocolSet(officer_keys=trust.keys, revoked=state.revoked)
    for ref, text in sorted(state.protocol_texts.items()):
        try:
            pset.add(parse_protocol(text, source=f"protocol/{ref}"))
        except HubError as exc:
            errors[ref] = str(exc)
    return pset, errors


def live_recipients(state: ConfigState, anchors: AnchorFile | None,
                    today: date | None = None) -> dict[str, frozenset[str]]:
    """ref -> recipient groups, for each governing (highest live) protocol version."""
    pset, _ = protocol_set_of(state, anchors)
    today = today or datetime.now(UTC).date()
    return {p.ref: frozenset(p.recipients) for p in pset.current(today)}


def protocol_rows(state: ConfigState, today: date, anchors: AnchorFile | None = None
                  ) -> list[ProtocolRow]:
    """Each protocol version on the config topic as the lifecycle judges it ``today``, for the
    status screen and the officer page (texts that failed to load are listed as unreadable).
    ``anchors``: the pinned officer keys; without them nothing is live."""
    pset, errors = protocol_set_of(state, anchors)
    rows = []
    for p in pset:
        st = pset.status(p, today)
        rows.append(ProtocolRow(p.ref, st.live, p.review_by, st.review_due, tuple(st.reasons),
                                p.retention_days, p.parties))
    rows += [ProtocolRow(ref, False, None, False, (f"unreadable: {e}",))
             for ref, e in errors.items()]
    return rows
