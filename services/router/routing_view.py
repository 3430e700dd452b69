"""The router's one routing view: subscriptions, live protocols with the groups they name,
suppression thresholds and audit terms, as one immutable value.

Routing, the hot-spot stage and the disclosure facts all read the same view, taken once per
batch, so no two of them can disagree about what is live. ``RoutingViews`` holds the current one
and replaces it on each config change (protocols parsed once per change, not once per reader) and
at each protocol's validity boundary (``services/protocols/validity.py``): a protocol that expires
at midnight stops routing at the first record after midnight, without waiting for a config
message. Pure: no Kafka; the clock and the boundary files are injected."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.audit.errors import AuditError
from services.core.audit.facts import protocol_terms
from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import AnchorFile
from services.protocols.in_force import protocol_set_of
from services.protocols.lifecycle import ProtocolSet
from services.protocols.validity import day_of, next_boundary
from services.router.hotspots.detector import Alert
from services.router.subscriptions import Subscription, entitled_groups, subscriptions_for

K = TypeVar("K")
V = TypeVar("V")

#: ref -> (lawful basis, feed -> field -> transform)
Terms = tuple[tuple[str, ...], Mapping[str, Mapping[str, str]]]

#: The view before any config: judged at no time, so the first ``at`` keeps it.
_NEVER = datetime.min.replace(tzinfo=UTC)


def _frozen(d: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class RoutingView:
    subs: tuple[Subscription, ...] = ()
    #: live protocol ref (id@version) -> the groups it names; a ref absent here is not live.
    live: Mapping[str, frozenset[str]] = field(default_factory=lambda: _frozen({}))
    #: protocol id -> suppress counts below this in group-facing aggregates.
    suppress: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    terms: Mapping[str, Terms] = field(default_factory=lambda: _frozen({}))
    #: protocol id -> allowed lateness for hot-spot windows, where the protocol sets one.
    lateness: Mapping[str, timedelta] = field(default_factory=lambda: _frozen({}))
    group_names: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    county: str = ""
    #: The instant liveness was judged at, and the next instant it may change by date alone.
    as_of: datetime = _NEVER
    good_until: datetime | None = None

    def route(self, rec: SharedRecord) -> list[str]:
        return entitled_groups(rec, self.subs, self.live)

    def alert_groups(self, alert: Alert) -> list[str]:
        from services.router.hotspot_stage import alert_recipients

        return alert_recipients(alert, self.subs, self.live)

    def sub_of(self, group: str) -> Subscription | None:
        return next((s for s in self.subs if s.group == group), None)

    def terms_of(self, ref: str, feed: str) -> tuple[list[str], dict[str, str]]:
        got = self.terms.get(ref)
        if got is None:
            # The router only routes under live protocols, which it has parsed; reaching here
            # means a record would leave unaudited, so refuse the batch instead.
            raise AuditError(f"protocol {ref} is not in the config state; cannot audit the "
                             "disclosure")
        return list(got[0]), dict(got[1].get(feed, {}))

    def basis_of(self, ref: str) -> list[str] | None:
        """The lawful basis of ``ref``; None for a version no longer in the config."""
        got = self.terms.get(ref)
        return None if got is None else list(got[0])

    def suppress_for(self, protocol_id: str, default: int) -> int:
        return self.suppress.get(protocol_id, default)

    def suppress_for_group(self, group: str) -> int:
        """The strictest small-count threshold of the live protocols naming ``group``: what its
        page and pack must honour at least (0 when none names it)."""
        return max((self.suppress.get(ref.partition("@")[0], 0)
                    for ref, groups in self.live.items() if group in groups), default=0)


def _live(pset: ProtocolSet, now: datetime) -> tuple[Mapping[str, frozenset[str]],
                                                     datetime | None]:
    live = {p.ref: frozenset(p.recipients) for p in pset.current(day_of(now))}
    return _frozen(live), next_boundary(pset, now)


def build_view(state: ConfigState, anchors: AnchorFile | None, areas: AreaIndex | None,
               now: datetime) -> tuple[RoutingView, ProtocolSet]:
    """The view of ``state`` at ``now`` and the protocol set it was judged from."""
    from services.router.hotspot_stage import lateness_by_protocol

    pset, _ = protocol_set_of(state, anchors)
    live, good_until = _live(pset, now)
    county = state.county
    terms = {p.ref: (tuple(p.lawful_basis),
                     _frozen({feed: _frozen(protocol_terms(p, feed)[1]) for feed in p.feeds}))
             for p in pset}
    view = RoutingView(
        subs=tuple(subscriptions_for(county, areas)),
        live=live,
        suppress=_frozen({p.id: p.suppress_below for p in pset}),
        terms=_frozen(terms),
        lateness=_frozen(lateness_by_protocol(pset)),
        group_names=_frozen({g.id: g.name for g in county.groups} if county else {}),
        county=county.county if county else "",
        as_of=now, good_until=good_until)
    return view, pset


class RoutingViews:
    """The current routing view: rebuilt on each config change, and re-judged at the next
    validity boundary when ``at`` is asked for an instant on or after it."""

    def __init__(self, anchors: AnchorFile | None, areas: Callable[[], AreaIndex | None],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._anchors = anchors
        self._areas = areas
        self._clock = clock
        self._view = RoutingView()
        self._pset: ProtocolSet | None = None

    def on_config(self, state: ConfigState) -> RoutingView:
        self._view, self._pset = build_view(state, self._anchors, self._areas(), self._clock())
        return self._view

    def set(self, view: RoutingView) -> None:
        """Install a view built elsewhere (benchmarks without a signed config)."""
        self._view, self._pset = view, None

    def now(self) -> datetime:
        """The views' clock (the wall clock in the service; injected in tests)."""
        return self._clock()

    def at(self, now: datetime | None = None) -> RoutingView:
        now = now or self._clock()
        view = self._view
        if view.good_until is not None and now >= view.good_until and self._pset is not None:
            live, good_until = _live(self._pset, now)
            view = self._view = replace(view, live=live, as_of=now, good_until=good_until)
        return view

    @property
    def current(self) -> RoutingView:
        return self.at()
