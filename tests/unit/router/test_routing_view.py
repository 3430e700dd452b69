"""The router's routing view (services/router/routing_view.py) and liveness at an instant
(services/protocols/validity.py): a protocol stops routing at its validity boundary without any
config message, the view is immutable, and routing, alerts and audit terms read the same view."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.audit.errors import AuditError
from services.core.config.settings import REPO_ROOT, Settings
from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import AnchorFile, dump_log, fingerprint, genesis
from services.protocols.protocol import Protocol, load_protocol
from services.protocols.signing import sign_protocol
from services.protocols.validity import boundaries, day_of, next_boundary
from services.router.routing_view import RoutingViews

AREAS = AreaIndex.load(Settings().boundaries_dir)
STEVENAGE = "E07000243"
LAST_DAY = date(2026, 3, 2)
MIDNIGHT = datetime(2026, 3, 3, tzinfo=UTC)  # the first instant after LAST_DAY


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _protocol(valid_from: date, valid_until: date) -> Protocol:
    p = load_protocol(REPO_ROOT / "deploy" / "hertfordshire" / "protocols" / "police-district.yaml")
    return p.model_copy(update={"disclosers": ["police"], "recipients": ["grp-a"],
                                "valid_from": valid_from, "valid_until": valid_until,
                                "review_by": valid_from, "signatures": []})


def _state(tmp_path: Path, protocol: Protocol) -> tuple[ConfigState, AnchorFile]:
    keys = {"police": Ed25519PrivateKey.generate(), "grp-a": Ed25519PrivateKey.generate()}
    log = genesis((party, f"officer {party}", k.public_key()) for party, k in keys.items())
    (tmp_path / "officer-keys.yaml").write_text(dump_log(log))
    for party, k in keys.items():
        protocol = sign_protocol(protocol, k, party, f"officer {party}")
    state = ConfigState()
    state.apply("county", {
        "county": "Hertfordshire", "officer_keys_sha256": fingerprint(log),
        "partners": [{"id": "police", "name": "Police", "kind": "police", "feeds": ["police"],
                      "officer": "O"}],
        "groups": [{"id": "grp-a", "name": "A", "officer": "Chair", "districts": [STEVENAGE],
                    "protocols": ["police-district"]}]})
    text = yaml.safe_dump(protocol.model_dump(mode="json"), sort_keys=False)
    state.apply(f"protocol/{protocol.ref}", {"yaml": text})
    return state, AnchorFile(tmp_path / "officer-keys.yaml")


def _record() -> SharedRecord:
    ward = sorted(w.code for w in AREAS.wards_in(STEVENAGE))[0]
    return SharedRecord(hub_record_id="r1", partner="police", feed="police", category="burglary",
                        ward_code=ward, district_code=STEVENAGE, fields={},
                        protocol="police-district@1", released_at=MIDNIGHT)


def _views(tmp_path: Path, protocol: Protocol, clock: Clock) -> RoutingViews:
    state, anchors = _state(tmp_path, protocol)
    views = RoutingViews(anchors, lambda: AREAS, clock=clock)
    views.on_config(state)
    return views


def test_a_protocol_expiring_at_midnight_stops_routing_at_midnight_without_a_config_message(
        tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT - timedelta(seconds=1))
    views = _views(tmp_path, _protocol(LAST_DAY - timedelta(days=30), LAST_DAY), clock)
    before = views.at()
    assert before.route(_record()) == ["grp-a"]
    assert before.good_until == MIDNIGHT

    clock.now = MIDNIGHT  # no on_config call from here on
    after = views.at()
    assert after.route(_record()) == []
    assert "police-district@1" not in after.live
    assert after.good_until is None  # nothing left that a date could make live
    # The view handed out before midnight is unchanged: a batch judged before the boundary
    # finishes under the view it started with.
    assert before.route(_record()) == ["grp-a"]


def test_a_protocol_starting_at_midnight_starts_routing_at_midnight(tmp_path: Path) -> None:
    clock = Clock(MIDNIGHT - timedelta(microseconds=1))
    views = _views(tmp_path, _protocol(MIDNIGHT.date(), MIDNIGHT.date() + timedelta(days=9)),
                   clock)
    assert views.at().route(_record()) == []
    clock.now = MIDNIGHT
    assert views.at().route(_record()) == ["grp-a"]
    assert views.at().good_until == MIDNIGHT + timedelta(days=10)


def test_the_view_is_immutable(tmp_path: Path) -> None:
    views = _views(tmp_path, _protocol(LAST_DAY, LAST_DAY), Clock(MIDNIGHT - timedelta(hours=1)))
    view = views.at()
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.live = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.live["other@1"] = frozenset({"grp-a"})  # type: ignore[index]
    assert isinstance(view.subs, tuple)


def test_routing_alerts_and_audit_terms_come_from_one_parse(tmp_path: Path) -> None:
    views = _views(tmp_path, _protocol(LAST_DAY, LAST_DAY), Clock(MIDNIGHT - timedelta(hours=1)))
    view = views.at()
    basis, transforms = view.terms_of("police-district@1", "police")
    assert basis
    assert basis == view.basis_of("police-district@1")
    assert transforms["category"] == "keep"
    assert view.suppress_for("police-district", 99) != 99  # the protocol's own threshold
    assert view.group_names == {"grp-a": "A"}
    assert view.county == "Hertfordshire"
    with pytest.raises(AuditError, match="not in the config state"):
        view.terms_of("other@1", "police")
    assert view.basis_of("other@1") is None


def test_validity_boundaries_are_utc_midnights_and_the_next_one_is_found() -> None:
    p = _protocol(date(2026, 1, 1), LAST_DAY)
    start, end = boundaries(p)
    assert (start, end) == (datetime(2026, 1, 1, tzinfo=UTC), MIDNIGHT)
    assert next_boundary([p], datetime(2025, 12, 31, 23, tzinfo=UTC)) == start
    assert next_boundary([p], start) == end
    assert next_boundary([p], end) is None
    assert day_of(datetime(2026, 3, 2, 23, 30, tzinfo=UTC)) == LAST_DAY
    with pytest.raises(ValueError, match="naive"):
        day_of(datetime(2026, 3, 2, 23, 30))


def test_the_router_stage_stops_delivering_at_the_boundary_without_a_config_message(
        tmp_path: Path) -> None:
    """Glue: the router's own stage (no broker: handle() is given decoded items) routes a record
    before midnight and not after, with only the clock moving."""
    from types import SimpleNamespace

    from services.core.kafka.stage_runner import Item
    from services.router.app import Router, SharedStage

    router = Router(Settings())
    clock = Clock(MIDNIGHT - timedelta(seconds=1))
    state, anchors = _state(tmp_path, _protocol(LAST_DAY - timedelta(days=30), LAST_DAY))
    router.views = RoutingViews(anchors, lambda: AREAS, clock=clock)
    router.hotspots.views = router.views
    router.views.on_config(state)
    router.hotspots.stage = router.hotspots._build_stage()
    stage = SharedStage(router)

    def delivered(record_id: str, offset: int) -> list[str]:
        rec = _record().model_copy(update={"hub_record_id": record_id})
        msg = SimpleNamespace(partition=0, offset=offset, value=rec.model_dump_json().encode())
        (outs,) = list(stage.handle([Item(msg, rec)]))
        assert isinstance(outs, list), outs
        return [o.topic for o in outs if ".deliver." in o.topic]

    assert delivered("r1", 0) == [router.topics.deliver("grp-a")]
    clock.now = MIDNIGHT
    assert delivered("r2", 1) == []
