"""The group page's small-count threshold is never weaker than a live protocol's: the hub setting
is a floor, and a protocol naming the group may only raise it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from services.core.config.settings import Settings
from services.core.ops.metrics import ServiceMetrics
from services.router.routing_view import RoutingView
from services.router.subscriptions import Subscription
from services.router.web.group_web import GroupWeb


def test_the_strictest_live_protocol_naming_the_group_sets_its_threshold() -> None:
    view = RoutingView(live={"police@2": frozenset({"grp-a", "grp-b"}),
                             "fire@1": frozenset({"grp-a"})},
                       suppress={"police": 5, "fire": 20, "health": 50})
    assert view.suppress_for_group("grp-a") == 20
    assert view.suppress_for_group("grp-b") == 5
    assert view.suppress_for_group("grp-c") == 0  # health is not live for anyone


@dataclass
class Source:
    floor: dict[str, int] = field(default_factory=dict)
    subs: list[Subscription] = field(default_factory=list)

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def suppress_below_for(self, group: str) -> int:
        return self.floor.get(group, 0)


class NoFacts:
    async def send(self, fact: object) -> None:
        raise AssertionError("no fact expected")


def test_the_page_shows_small_counts_by_the_stricter_of_hub_and_protocol(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1",
                        group_page_suppress_below=10)
    web = GroupWeb(settings, Source({"grp-strict": 20, "grp-loose": 5}),
                   ServiceMetrics("router"), audit_sink=NoFacts())
    assert web.suppress_below("grp-strict") == 20
    assert web.suppress_below("grp-loose") == 10
    assert web.suppress_below("grp-none") == 10


def test_the_officers_pack_takes_the_floor_from_the_county_protocols(tmp_path: Path) -> None:
    from services.core.config.settings import REPO_ROOT
    from services.router.web.pack_source import protocol_floor

    (tmp_path / "protocols").mkdir()
    source = REPO_ROOT / "deploy" / "hertfordshire" / "protocols" / "police-district.yaml"
    text = source.read_text()
    assert "suppress_below: 5" in text
    (tmp_path / "protocols" / "police-district.yaml").write_text(
        text.replace("suppress_below: 5", "suppress_below: 20"))
    settings = Settings(config_dir=tmp_path)
    assert protocol_floor(settings, "grp-watford") == 20
    assert protocol_floor(settings, "grp-not-named") == 0
