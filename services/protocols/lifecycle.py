"""Whether a protocol is live today, and which protocol governs a partner's feed.

A protocol is live only if *all* of these hold:

* every party (each discloser and each recipient) has a valid signature from one of its officers
  on this exact document;
* ``valid_from <= today <= valid_until`` (both dates inclusive);
* its ref (``id@version``) has not been revoked.

Anything else is not live, and :class:`ProtocolStatus` says why in words an officer can act on.
Review dates do not stop sharing (a protocol overdue for review is still signed and in date) but
are flagged, because an overdue review is what the ICO asks about first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from services.core.config.errors import ConfigError
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import OfficerKeys, verify_signatures

#: Why a protocol is not live, as a bounded metric label, most serious first.
CAUSES = ("revoked", "expired", "not_yet_valid", "bad_signature", "unsigned")


@dataclass(frozen=True)
class ProtocolStatus:
    ref: str
    live: bool
    reasons: list[str] = field(default_factory=list)
    review_due: bool = False
    #: The reasons as labels from :data:`CAUSES`, most serious first.
    causes: tuple[str, ...] = ()

    @property
    def cause(self) -> str | None:
        """The most serious reason it is not live; None when live."""
        return self.causes[0] if self.causes else None


def protocol_status(protocol: Protocol, *, today: date, officer_keys: OfficerKeys,
                    revoked: set[str] | frozenset[str] = frozenset()) -> ProtocolStatus:
    return _status(protocol, today, verify_signatures(protocol, officer_keys), revoked)


def _status(protocol: Protocol, today: date, signature_problems: list[str],
            revoked: set[str] | frozenset[str]) -> ProtocolStatus:
    reasons: list[str] = []
    causes: set[str] = set()
    if protocol.ref in revoked:
        reasons.append("revoked")
        causes.add("revoked")
    if today < protocol.valid_from:
        reasons.append(f"not yet valid (from {protocol.valid_from.isoformat()})")
        causes.add("not_yet_valid")
    if today > protocol.valid_until:
        reasons.append(f"expired {protocol.valid_until.isoformat()}")
        causes.add("expired")
    reasons.extend(signature_problems)
    # A missing signature is work still to do; one that fails to verify means the text changed
    # after signing (or a wrong key), which an officer must treat as tampering.
    causes.update("unsigned" if p.startswith("unsigned by") else "bad_signature"
                  for p in signature_problems)
    return ProtocolStatus(ref=protocol.ref, live=not reasons, reasons=reasons,
                          review_due=today >= protocol.review_by,
                          causes=tuple(c for c in CAUSES if c in causes))


class ProtocolSet:
    """All known protocols (several versions per id), the officer key registry and revocations.

    Per protocol id only the **highest live version** governs: once version 2 is live, version 1
    stops being used even if it is still signed and in date, because version 2 is what the parties
    last agreed (it may have narrowed a feed or removed a recipient). If version 2 is not live
    (e.g. not yet signed by every party) version 1 carries on until it lapses.
    """

    def __init__(self, protocols: Iterable[Protocol] = (), *, officer_keys: OfficerKeys,
                 revoked: Iterable[str] = ()) -> None:
        self._officer_keys = officer_keys
        self._revoked: set[str] = set(revoked)
        self._by_ref: dict[str, Protocol] = {}
        # Signature checks are the only costly part of a status and depend only on the (frozen)
        # document and the registry, so they are computed once per ref.
        self._sig_problems: dict[str, list[str]] = {}
        # The protocols in force change only with the set (add, revoke) or the calendar, yet the
        # stage asks for every record: answers are kept per day until the set changes.
        self._live: dict[tuple[str, str, date], tuple[Protocol, ...]] = {}
        for p in protocols:
            self.add(p)

    @classmethod
    def from_directory(cls, directory: Path, *, officer_keys: OfficerKeys,
                       revoked: Iterable[str] = ()) -> ProtocolSet:
        """Every ``*.yaml`` in ``directory`` (not recursive)."""
        paths = sorted(Path(directory).glob("*.yaml"))
        return cls((load_protocol(p) for p in paths), officer_keys=officer_keys, revoked=revoked)

    def add(self, protocol: Protocol) -> None:
        """Add (or re-sign) a protocol. Two different documents may not share one ref: a version
        number names exactly one agreed text."""
        old = self._by_ref.get(protocol.ref)
        if old is not None and old.model_dump(exclude={"signatures"}) != protocol.model_dump(
                exclude={"signatures"}):
            raise ConfigError(f"{protocol.ref} already exists with different content; "
                              "raise the version number", field="version")
        self._by_ref[protocol.ref] = protocol
        self._sig_problems.pop(protocol.ref, None)
        self._live.clear()

    @property
    def officer_keys(self) -> OfficerKeys:
        """The officer key registry signatures are checked against."""
        return self._officer_keys

    def revoke(self, ref: str) -> None:
        self._revoked.add(ref)
        self._live.clear()

    def get(self, ref: str) -> Protocol | None:
        return self._by_ref.get(ref)

    def __iter__(self) -> Iterator[Protocol]:
        return iter(sorted(self._by_ref.values(), key=lambda p: (p.id, p.version)))

    def __len__(self) -> int:
        return len(self._by_ref)

    def status(self, protocol: Protocol, today: date) -> ProtocolStatus:
        problems = self._sig_problems.get(protocol.ref)
        if problems is None:
            problems = self._sig_problems[protocol.ref] = verify_signatures(
                protocol, self._officer_keys)
        return _status(protocol, today, problems, self._revoked)

    def statuses(self, today: date) -> list[ProtocolStatus]:
        return [self.status(p, today) for p in self]

    def current(self, today: date) -> list[Protocol]:
        """The governing protocol of each id: its highest live version."""
        best: dict[str, Protocol] = {}
        for p in self:
            if self.status(p, today).live and (p.id not in best or
                                                p.version > best[p.id].version):
                best[p.id] = p
        return [best[i] for i in sorted(best)]

    def blocked_cause(self, partner: str, feed: str, today: date) -> tuple[str, str]:
        """Why nothing may be released for ``partner``'s ``feed`` today: (cause label, detail).

        The newest version of each protocol covering the feed is asked; with none at all the
        cause is ``no_protocol``. Only meaningful when :meth:`live_for` is empty.
        """
        newest: dict[str, Protocol] = {}
        for p in self:
            if partner in p.disclosers and feed in p.feeds:
                newest[p.id] = p  # iteration is by (id, version), so the last one wins
        if not newest:
            return "no_protocol", f"no protocol covers {partner}/{feed}"
        statuses = [self.status(p, today) for _, p in sorted(newest.items())]
        worst = min(statuses, key=lambda st: CAUSES.index(st.cause) if st.cause else len(CAUSES))
        return (worst.cause or "no_protocol",
                f"{worst.ref} not live: {'; '.join(worst.reasons) or 'superseded'}")

    def live_for(self, partner: str, feed: str, today: date) -> list[Protocol]:
        """Governing protocols under which ``partner`` may disclose ``feed`` today.

        The version is chosen first and filtered second, so a superseded version cannot be used
        to disclose something its successor no longer allows.
        """
        key = (partner, feed, today)
        live = self._live.get(key)
        if live is None:
            if len(self._live) > 4096:
                self._live.clear()  # a long-running stage sees new days and partners
            live = self._live[key] = tuple(
                p for p in self.current(today) if partner in p.disclosers and feed in p.feeds)
        return list(live)
