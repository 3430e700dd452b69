"""The tasking pack outside the router: ``s115hub group pack`` reads the group's own topics (its
deliveries and alerts) with the officer's hub settings and builds the same HTML as the page's
button. Kept apart from pack.py so the HTML builder stays pure."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.county import load_county
from services.core.config.errors import ConfigError
from services.core.config.settings import Settings
from services.core.errors import HubError
from services.core.kafka.scan import scan
from services.core.kafka.topics import topics_for
from services.protocols.protocol import load_protocol
from services.router.subscriptions import subscription_for
from services.router.web.group_web import group_wards
from services.router.web.pack import fields_by_protocol, pack_html
from services.router.web.page_routes import period_bounds
from services.router.web.svgmap import ward_svg


def protocol_floor(settings: Settings, group: str) -> int:
    """The strictest ``suppress_below`` of the county's protocols naming ``group`` (as the
    router's page does with the live ones); an unreadable file counts as no floor, since the
    hub setting still applies and ``config check`` names the file."""
    floor = 0
    for path in sorted((settings.config_dir / "protocols").glob("*.yaml")):
        try:
            p = load_protocol(path)
        except (HubError, OSError, ValueError):
            continue
        if group in p.recipients:
            floor = max(floor, p.suppress_below)
    return floor


async def build_pack(settings: Settings, group: str, start: datetime | None,
                     end: datetime | None) -> tuple[str, datetime, datetime, int]:
    """(HTML, from, to, records in the period) for ``group``."""
    try:
        county = load_county(settings.config_dir / "county.yaml")
    except (HubError, OSError) as exc:
        raise ConfigError(f"cannot read the county configuration: {exc}") from exc
    g = next((x for x in county.groups if x.id == group), None)
    if g is None:
        raise ConfigError(f"{group!r} is not a group in {settings.config_dir}/county.yaml "
                          f"(groups: {', '.join(x.id for x in county.groups)})")
    s, e = period_bounds(start, end)
    areas = AreaIndex.load(settings.boundaries_dir)
    sub = subscription_for(g, county.county, areas)
    wards = {c: areas.wards[c].name for c in group_wards(sub, areas)}
    topics = topics_for(settings)
    records: dict[str, SharedRecord] = {}
    async for msg in scan(settings, topics.deliver(group)):
        try:
            rec = SharedRecord.model_validate_json(msg.value)
        except ValidationError:
            continue
        records.setdefault(rec.hub_record_id, rec)
    alerts: dict[str, HotspotAlert] = {}
    async for msg in scan(settings, topics.hotspots(group)):
        try:
            alert = HotspotAlert.model_validate_json(msg.value)
        except ValidationError:
            continue
        alerts[alert.alert_id] = alert
    recs = list(records.values())
    from services.core.audit.facts import default_actor
    from services.router.web.records import record_time

    html = pack_html(group=group, name=g.name, start=s, end=e, records=recs,
                     alerts=list(alerts.values()), wards=wards, svg=ward_svg(areas, wards),
                     suppress_below=max(settings.group_page_suppress_below,
                                        protocol_floor(settings, group)),
                     protocol_fields=fields_by_protocol(recs),
                     generated_at=datetime.now(UTC), generated_by=default_actor())
    n = sum(1 for r in recs if (t := record_time(r, "event")) is not None and s <= t < e)
    return html, s, e, n

