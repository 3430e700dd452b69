"""One raw record in, zero or more depersonalised shared records out. Pure apart from the key
stores it is handed; the Kafka glue is in app.py.

Order matters for privacy: the sealed personal fields are opened here and nowhere downstream; the
ward and district are derived from the precise point *before* the protocol generalises it; the
risk gate sees the protocol's output and may coarsen it further, and the area codes attached to
the shared record are never finer than the location the gate let through.

Blocked, not held: a record no live protocol covers is not released and not stored here. It stays
on its raw topic (encrypted, for the raw retention period) and the stage moves on, so one
partner's lapsed protocol cannot stall the other partners on the same feed topic. Releasing it
later is an explicit re-read of the raw topic, never automatic (see notes/issue-3.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from schemas.envelope import RawRecord
from schemas.feeds import EVENT_TIME_FIELD
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.errors import CryptoError
from services.depersonalise.engine import AreaLevel, release
from services.depersonalise.lifecycle import ProtocolSet
from services.depersonalise.protocol import Protocol as SharingProtocol
from services.depersonalise.risk_gate import Action, RiskGate
from services.depersonalise.transforms import AreaInfo


class Opener(Protocol):
    def open_sealed(self, sealed: dict[str, Any], record_id: str) -> dict[str, Any]: ...


class Keys(Protocol):
    def key_for(self, protocol_id: str, epoch: int | None = None) -> tuple[int, bytes]: ...


@dataclass
class StageResult:
    shared: list[SharedRecord] = field(default_factory=list)
    #: Why nothing was released, a bounded label: a protocol cause from lifecycle.CAUSES,
    #: "no_protocol", or "unreadable" (the sealed fields could not be opened); None when released.
    blocked: str | None = None
    detail: str | None = None
    transforms: dict[str, dict[str, str]] = field(default_factory=dict)
    #: protocol ref -> the risk gate's action on this record.
    gate: dict[str, Action] = field(default_factory=dict)
    #: protocol ref -> the quasi-identifiers the gate coarsened or withheld (names only).
    gated_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)


def point_of(record: dict[str, Any]) -> tuple[float, float] | None:
    loc = record.get("location")
    if isinstance(loc, dict) and "lat" in loc and "lon" in loc:
        return float(loc["lat"]), float(loc["lon"])
    return None


_UNSET: Any = object()


def area_of(record: dict[str, Any], areas: AreaIndex, ward: Any = _UNSET) -> AreaInfo | None:
    """Ward and district of the record's precise point; else the district the source named.

    When a source names the district itself (police.uk gives the LSOA's district) and the point
    falls in another district, the source wins: police.uk snaps points to nearby map points,
    which can cross a boundary, while the LSOA was assigned from the true location. The ward is
    then unknown rather than wrong.
    """
    hint = record.get("district_hint")
    hint = hint if isinstance(hint, str) and hint else None
    point = point_of(record)
    if point is not None:
        if ward is _UNSET:  # not looked up in a batch already (``locate_many``)
            ward = areas.locate(*point)
        if ward is not None and (hint is None or hint.casefold() == ward.district_name.casefold()):
            return AreaInfo(ward.code, ward.name, ward.district_code, ward.district_name,
                            ward.point)
    if hint is not None:
        code = areas.district_by_name.get(hint.casefold())
        return AreaInfo(None, None, code, areas.district_names[code] if code else hint, None)
    return None


def event_time(feed: str, record: dict[str, Any]) -> datetime | None:
    value = record.get(EVENT_TIME_FIELD[feed])
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if isinstance(value, datetime) else None


def gated_area_level(level: AreaLevel, location: Any, area: AreaInfo | None) -> AreaLevel:
    """The area level left once the gate has had its say on the released ``location``."""
    if level == "none" or area is None or location is None:
        return "none"
    if isinstance(location, dict) or location == area.ward_code:
        return level
    if location in (area.district_code, area.district_name):
        return "district"
    return "none"


class Depersonaliser:
    def __init__(self, *, areas: AreaIndex, opener: Opener, keys: Keys,
                 gate_window: timedelta = timedelta(days=7)) -> None:
        self.areas = areas
        self.opener = opener
        self.keys = keys
        self.gate_window = gate_window
        self.protocols = ProtocolSet(officer_keys={})
        # One gate per (protocol version, feed): a new version may change k or the QIs, and
        # two feeds' records must not vouch for each other.
        self._gates: dict[tuple[str, str], RiskGate] = {}

    def gate_for(self, protocol: SharingProtocol, feed: str) -> RiskGate:
        gate = self._gates.get((protocol.ref, feed))
        if gate is None:
            gate = self._gates[(protocol.ref, feed)] = RiskGate.for_protocol(
                protocol, feed, window=self.gate_window)
        return gate

    def process(self, raw: RawRecord, *, today: date | None = None,
                now: datetime | None = None) -> StageResult:
        now = now or datetime.now(UTC)
        opened = self.open(raw, today or now.date())
        if isinstance(opened, StageResult):
            return opened
        return self.release(raw, *opened, now=now)

    def process_batch(self, raws: list[RawRecord], *, now: datetime | None = None
                      ) -> Iterator[StageResult]:
        """``process`` for a batch, lazily: the sealed fields of every record are opened first
        and every ward is looked up in one vectorised query, then records are released one at a
        time as the caller iterates (so a caller timing each record sees each record's own cost,
        and stopping early leaves the rest untouched by the risk gate)."""
        now = now or datetime.now(UTC)
        opened: list[Any] = []
        for raw in raws:
            try:
                opened.append(self.open(raw, now.date()))
            except Exception as exc:
                opened.append(exc)
        todo = [i for i, o in enumerate(opened)
                if isinstance(o, tuple) and point_of(o[1]) is not None]
        points = [point_of(o[1]) for o in opened if isinstance(o, tuple)]
        wards = self.areas.locate_many([p for p in points if p is not None])
        ward_of = dict(zip(todo, wards, strict=True))
        for i, (raw, o) in enumerate(zip(raws, opened, strict=True)):
            if isinstance(o, Exception):
                raise o
            yield o if isinstance(o, StageResult) else self.release(
                raw, *o, now=now, ward=ward_of.get(i, _UNSET))

    def open(self, raw: RawRecord, today: date
             ) -> StageResult | tuple[list[SharingProtocol], dict[str, Any]]:
        """The live protocols and the record with its sealed fields opened, or why not."""
        env = raw.envelope
        live = self.protocols.live_for(env.partner, env.feed, today)
        if not live:
            cause, detail = self.protocols.blocked_cause(env.partner, env.feed, today)
            return StageResult(blocked=cause, detail=detail)
        record = dict(raw.fields)
        if raw.sealed:
            try:
                record.update(self.opener.open_sealed(raw.sealed, env.hub_record_id))
            except CryptoError as exc:
                return StageResult(blocked="unreadable", detail=str(exc))
        return live, record

    def release(self, raw: RawRecord, live: list[SharingProtocol], record: dict[str, Any], *,
                now: datetime, ward: Any = _UNSET) -> StageResult:
        env = raw.envelope
        area = area_of(record, self.areas, ward)
        when = event_time(env.feed, record)
        out = StageResult()
        for protocol in live:
            epoch, key = self.keys.key_for(protocol.id)
            rel = release(protocol, env.feed, record, area=area, pseudonym_key=key,
                          key_epoch=epoch, event_time=when)
            decision = self.gate_for(protocol, env.feed).check(
                rel.fields, now, area, record_id=env.hub_record_id)
            fields = decision.fields
            level = rel.area_level
            for name in decision.generalised:
                if protocol.feeds[env.feed].fields[name].transform == "location":
                    level = gated_area_level(level, fields.get(name), area)
            ward = area if area is not None and level == "ward" else None
            district = area if area is not None and level in ("ward", "district") else None
            out.shared.append(SharedRecord(
                hub_record_id=env.hub_record_id, partner=env.partner, feed=env.feed,
                category=str(record.get("category", "")),
                ward_code=ward.ward_code if ward else None,
                ward_name=ward.ward_name if ward else None,
                district_code=district.district_code if district else None,
                district_name=district.district_name if district else None,
                fields=fields, protocol=protocol.ref,
                key_epoch=epoch,
                released_at=now))
            out.transforms[protocol.ref] = {f: t for f, t in rel.transforms.items()
                                            if f in fields}
            out.gate[protocol.ref] = decision.action
            out.gated_fields[protocol.ref] = tuple(decision.generalised)
        return out
