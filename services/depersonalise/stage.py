"""One raw record in, zero or more depersonalised shared records out. Pure apart from the key
stores it is handed; the Kafka glue is in app.py.

Order matters for privacy: the sealed personal fields are opened here and nowhere downstream; the
ward and district are derived from the precise point *before* the protocol generalises it; the
risk gate sees the protocol's output and may coarsen it further, and the area codes attached to
the shared record are never finer than the location the gate let through.

Held for its ward (streaming anonymisation): when the risk gate would have to give up a
record's ward because its ward cell has not reached k yet, and the protocol sets ``hold_hours``,
the record is kept here, not released, until either the cell fills (a later record of the same
protocol, feed and ward is checked: then every held record that now passes leaves at ward level)
or its hold ends (``due``: it leaves at whatever the counts allow, usually the district). The
hold is durable by not being committed: ``commit_floor`` names, per raw partition, the offset of
the oldest record still held, and the glue must not commit past it. After a kill -9 the records
from that offset on are read again: held ones are held again, released ones are released again
and the router drops them by hub record id. Nothing held exists only in memory.

Blocked, not held: a record no live protocol covers is not released and not stored here. It stays
on its raw topic (encrypted, for the raw retention period) and the stage moves on, so one
partner's lapsed protocol cannot stall the other partners on the same feed topic. Releasing it
later is an explicit re-read of the raw topic, never automatic (see notes/issue-3.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

from schemas.envelope import RawRecord
from schemas.event_time import event_time
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.crypto.errors import CryptoError
from services.depersonalise.engine import AreaLevel, release
from services.depersonalise.risk_gate import Action, Decision, RiskGate
from services.protocols.lifecycle import ProtocolSet
from services.protocols.protocol import Protocol as SharingProtocol
from services.protocols.transforms import AreaInfo


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
    #: protocol ref -> the risk gate's action on this record ("hold": kept back for its ward).
    gate: dict[str, Action] = field(default_factory=dict)
    #: (feed, protocol ref, action) of records held earlier and released with this result;
    #: action "late_ward": released at the district earlier, released again with its ward now.
    released_held: list[tuple[str, str, Action | Literal["late_ward"]]] = field(
        default_factory=list)
    #: protocol ref -> the quasi-identifiers the gate coarsened or withheld (names only).
    gated_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)


#: Where a raw record was read from: (topic, partition, offset).
Position = tuple[str, int, int]


@dataclass
class _Held:
    """What is needed to release a held record later; no plaintext personal data (the protocol
    has been applied), only the gate's decision is pending."""
    env: Any
    category: str
    protocol: SharingProtocol
    epoch: int
    fields: dict[str, Any]
    transforms: dict[str, str]
    area_level: AreaLevel
    area: AreaInfo | None
    until: datetime
    position: Position | None


#: Records remembered for a late ward release, across all cells; the oldest are forgotten first.
MAX_LATE = 100_000


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
        #: (hub record id, protocol ref) -> held record; insertion order is hold order.
        self._held: dict[tuple[str, str], _Held] = {}
        #: (protocol ref, feed, ward code) -> held keys in that ward cell.
        self._held_cells: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        #: Released at the district after a hold, waiting for their ward cell to reach k
        #: (module docstring): (protocol ref, feed, ward code) -> {(hub id, ref): record}.
        self._late: dict[tuple[str, str, str], dict[tuple[str, str], _Held]] = {}
        self._late_order: dict[tuple[str, str], tuple[str, str, str]] = {}

    @property
    def late(self) -> int:
        """Records released at the district still waiting for a late ward release."""
        return len(self._late_order)

    @property
    def held(self) -> int:
        return len(self._held)

    def commit_floor(self) -> dict[tuple[str, int], int]:
        """Per raw (topic, partition): the offset of the oldest held record. Committing at most
        this offset keeps every held record on the raw topic until it is released."""
        floor: dict[tuple[str, int], int] = {}
        for h in self._held.values():
            if h.position is not None:
                tp = (h.position[0], h.position[1])
                floor[tp] = min(floor.get(tp, h.position[2]), h.position[2])
        return floor

    def due(self, now: datetime | None = None) -> StageResult:
        """Held records whose hold has ended, released at what the counts allow now."""
        now = now or datetime.now(UTC)
        out = StageResult()
        for key, h in list(self._held.items()):
            if h.until <= now:
                self._settle(key, h, now, out, expired=True)
        for key, cell in list(self._late_order.items()):
            if self._late[cell][key].until > now:
                break  # remembered in time order: the rest end later
            self._forget_late(key)
        return out

    def _remember_late(self, key: tuple[str, str], h: _Held, now: datetime) -> None:
        assert h.area is not None
        assert h.area.ward_code is not None
        gate = self.gate_for(h.protocol, h.env.feed)
        cell = (key[1], h.env.feed, h.area.ward_code)
        # Until the record's own count leaves the gate's window (one bucket early, so it is
        # always still among the records that make up its cell's count).
        until = now + gate.window - gate.bucket_width
        self._late.setdefault(cell, {})[key] = _Held(
            h.env, h.category, h.protocol, h.epoch, h.fields, h.transforms, h.area_level,
            h.area, until, None)
        self._late_order.pop(key, None)
        self._late_order[key] = cell
        while len(self._late_order) > MAX_LATE:
            self._forget_late(next(iter(self._late_order)))

    def _forget_late(self, key: tuple[str, str]) -> None:
        cell = self._late_order.pop(key)
        del self._late[cell][key]
        if not self._late[cell]:
            del self._late[cell]

    def _release_late(self, cell: tuple[str, str, str], now: datetime, out: StageResult) -> None:
        """The ward cell ``cell`` has just passed the gate at ward level: release again, with
        their ward, the remembered records of it that pass now."""
        for key, h in list(self._late.get(cell, {}).items()):
            live = self.protocols.live_for(h.env.partner, h.env.feed, now.date())
            if all(p.ref != h.protocol.ref for p in live):
                self._forget_late(key)  # revoked or superseded since: never again under it
                continue
            gate = self.gate_for(h.protocol, h.env.feed)
            decision = gate.recheck(h.fields, h.area, expired=True, record_id=key[0], at=now)
            if not gate.keeps_ward(decision.fields, h.area):
                continue
            self._forget_late(key)
            out.shared.append(self._shared(h.env, h.category, h.protocol, h.epoch, decision,
                                           h.area_level, h.area, now))
            out.released_held.append((h.env.feed, h.protocol.ref, "late_ward"))

    def _settle(self, key: tuple[str, str], h: _Held, now: datetime, out: StageResult, *,
                expired: bool) -> bool:
        live = self.protocols.live_for(h.env.partner, h.env.feed, now.date())
        if all(p.ref != h.protocol.ref for p in live):
            # Revoked, expired or superseded while held: a revocation always applies, so the
            # record is not released under it. It stays on its raw topic, blocked, like any
            # record no live protocol covers (a later replay re-presents it).
            self._drop(key, h)
            return True
        gate = self.gate_for(h.protocol, h.env.feed)
        decision = gate.recheck(h.fields, h.area, expired=expired, record_id=key[0],
                                at=now)
        if decision.action == "hold":
            return False
        self._drop(key, h)
        out.shared.append(self._shared(h.env, h.category, h.protocol, h.epoch, decision,
                                       h.area_level, h.area, now))
        out.transforms[h.protocol.ref] = {f: t for f, t in h.transforms.items()
                                          if f in decision.fields}
        out.released_held.append((h.env.feed, h.protocol.ref, decision.action))
        if expired and h.area_level == "ward" and not gate.keeps_ward(decision.fields, h.area):
            self._remember_late(key, h, now)
        return True

    def _drop(self, key: tuple[str, str], h: _Held) -> None:
        del self._held[key]
        if h.area is not None and h.area.ward_code:
            cell = self._held_cells.get((key[1], h.env.feed, h.area.ward_code))
            if cell is not None:
                cell.remove(key)
                if not cell:
                    del self._held_cells[(key[1], h.env.feed, h.area.ward_code)]

    def _shared(self, env: Any, category: str, protocol: SharingProtocol, epoch: int,
                decision: Decision, level: AreaLevel, area: AreaInfo | None,
                now: datetime) -> SharedRecord:
        fields = decision.fields
        for name in decision.generalised:
            if protocol.feeds[env.feed].fields[name].transform == "location":
                level = gated_area_level(level, fields.get(name), area)
        ward = area if area is not None and level == "ward" else None
        district = area if area is not None and level in ("ward", "district") else None
        return SharedRecord(
            hub_record_id=env.hub_record_id, partner=env.partner, feed=env.feed,
            category=category,
            ward_code=ward.ward_code if ward else None,
            ward_name=ward.ward_name if ward else None,
            district_code=district.district_code if district else None,
            district_name=district.district_name if district else None,
            fields=fields, protocol=protocol.ref,
            key_epoch=epoch,
            released_at=now)

    def gate_for(self, protocol: SharingProtocol, feed: str) -> RiskGate:
        gate = self._gates.get((protocol.ref, feed))
        if gate is None:
            gate = self._gates[(protocol.ref, feed)] = RiskGate.for_protocol(
                protocol, feed, window=self.gate_window)
        return gate

    def process(self, raw: RawRecord, *, today: date | None = None,
                now: datetime | None = None, position: Position | None = None) -> StageResult:
        now = now or datetime.now(UTC)
        opened = self.open(raw, today or now.date())
        if isinstance(opened, StageResult):
            return opened
        return self.release(raw, *opened, now=now, position=position)

    def process_batch(self, raws: list[RawRecord], *, now: datetime | None = None,
                      positions: list[Position | None] | None = None
                      ) -> Iterator[StageResult]:
        """``process`` for a batch, lazily: the sealed fields of every record are opened first
        and every ward is looked up in one vectorised query, then records are released one at a
        time as the caller iterates (so a caller timing each record sees each record's own cost,
        and stopping early leaves the rest untouched by the risk gate). ``positions``: where each
        raw record was read, for the hold's commit floor."""
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
                raw, *o, now=now, ward=ward_of.get(i, _UNSET),
                position=positions[i] if positions is not None else None)

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
                now: datetime, ward: Any = _UNSET, position: Position | None = None
                ) -> StageResult:
        env = raw.envelope
        area = area_of(record, self.areas, ward)
        got = event_time(env.feed, record)
        when = got.when if got else None
        out = StageResult()
        for protocol in live:
            epoch, key = self.keys.key_for(protocol.id)
            rel = release(protocol, env.feed, record, area=area, pseudonym_key=key,
                          key_epoch=epoch, event_time=when)
            gate = self.gate_for(protocol, env.feed)
            decision = gate.check(rel.fields, now, area, record_id=env.hub_record_id)
            out.gate[protocol.ref] = decision.action
            category = str(record.get("category", ""))
            hkey = (env.hub_record_id, protocol.ref)
            if decision.action == "hold":
                if hkey not in self._held:
                    until = now + gate.hold
                    self._held[hkey] = _Held(env, category, protocol, epoch, rel.fields,
                                            rel.transforms, rel.area_level, area, until,
                                            position)
                    # The gate holds only records with a ward: it holds to keep the ward.
                    assert area is not None
                    assert area.ward_code is not None
                    self._held_cells.setdefault(
                        (protocol.ref, env.feed, area.ward_code), []).append(hkey)
                continue
            out.shared.append(self._shared(env, category, protocol, epoch, decision,
                                           rel.area_level, area, now))
            out.transforms[protocol.ref] = {f: t for f, t in rel.transforms.items()
                                            if f in decision.fields}
            out.gated_fields[protocol.ref] = tuple(decision.generalised)
            if area is not None and area.ward_code:
                # This record may have filled its ward cell: release whatever it was holding.
                cell = (protocol.ref, env.feed, area.ward_code)
                for held_key in list(self._held_cells.get(cell, [])):
                    self._settle(held_key, self._held[held_key], now, out, expired=False)
                if cell in self._late and gate.keeps_ward(decision.fields, area):
                    self._release_late(cell, now, out)
        return out
