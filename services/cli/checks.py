"""Checks the CLI makes before acting on a name an officer typed: a partner or group that is in
no county file gets one clear line instead of a key nobody can use or a topic nobody fills."""

from __future__ import annotations

from services.core.config.county import County, load_county
from services.core.config.errors import ConfigError
from services.core.config.settings import Settings
from services.core.errors import HubError


def county_of(settings: Settings) -> County:
    path = settings.config_dir / "county.yaml"
    if not path.is_file():
        raise ConfigError(f"no county file at {path}: set S115HUB_CONFIG_DIR (or the env file "
                          "`up` wrote) to the directory holding county.yaml")
    return load_county(path)


def require_partner(settings: Settings, partner: str) -> None:
    county = county_of(settings)
    if county.partner(partner) is None:
        raise HubError(f"partner {partner!r} is in no county file "
                       f"({settings.config_dir / 'county.yaml'}; partners: "
                       f"{', '.join(p.id for p in county.partners)}): add it there first")


def require_group(settings: Settings, group: str) -> None:
    county = county_of(settings)
    if group not in {g.id for g in county.groups}:
        raise HubError(f"group {group!r} is not in {settings.config_dir / 'county.yaml'} "
                       f"(groups: {', '.join(g.id for g in county.groups)})")
