"""Turn the config topic's state into the protocols in force. A protocol text that fails to parse
is reported, never half-applied: its records stay blocked."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.core.config_state import ConfigState
from services.core.errors import HubError
from services.core.hub_status import ProtocolRow
from services.depersonalise.lifecycle import ProtocolSet
from services.depersonalise.protocol import parse_protocol
from services.depersonalise.signing import officer_keys_from


def protocol_set_of(state: ConfigState) -> tuple[ProtocolSet, dict[str, str]]:
    """The protocols of ``state`` and, by ref, the problems of the texts that were refused."""
    entries: dict[str, list[bytes]] = {}
    for officer in state.officers.values():
        entries.setdefault(officer["party"], []).append(officer["public_key_pem"].encode())
    errors: dict[str, str] = {}
    try:
        keys = officer_keys_from(entries)
    except HubError as exc:
        keys = {}
        errors["officers"] = str(exc)
    pset = ProtocolSet(officer_keys=keys, revoked=state.revoked)
    for ref, text in sorted(state.protocol_texts.items()):
        try:
            pset.add(parse_protocol(text, source=f"protocol/{ref}"))
        except HubError as exc:
            errors[ref] = str(exc)
    return pset, errors


def live_recipients(state: ConfigState, today: date | None = None) -> dict[str, frozenset[str]]:
    """ref -> recipient groups, for each governing (highest live) protocol version."""
    pset, _ = protocol_set_of(state)
    today = today or datetime.now(UTC).date()
    return {p.ref: frozenset(p.recipients) for p in pset.current(today)}


def protocol_rows(state: ConfigState, today: date) -> list[ProtocolRow]:
    """Each protocol version on the config topic as the lifecycle judges it ``today``, for the
    status screen and the officer page (texts that failed to load are listed as unreadable)."""
    pset, errors = protocol_set_of(state)
    rows = []
    for p in pset:
        st = pset.status(p, today)
        rows.append(ProtocolRow(p.ref, st.live, p.review_by, st.review_due, tuple(st.reasons),
                                p.retention_days, p.parties))
    rows += [ProtocolRow(ref, False, None, False, (f"unreadable: {e}",))
             for ref, e in errors.items()]
    return rows
