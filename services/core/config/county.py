"""The county configuration an officer edits: partners, their feeds, and the tasking groups with
their areas and categories. Protocols are separate documents (see services/protocols)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.feeds import FeedName
from services.core.config.yamlconf import load_file

Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Partner(_Strict):
    id: str = Slug
    name: str
    kind: FeedName  # an agency kind is named as the feed it publishes
    feeds: list[FeedName] = Field(min_length=1)
    officer: str = Field(description="The designated information-sharing officer.")


class Group(_Strict):
    """A hot-spot tasking group and what it subscribes to."""

    id: str = Slug
    name: str
    districts: list[str] = Field(default_factory=list, description="District (LAD) codes.")
    wards: list[str] = Field(default_factory=list, description="Ward codes, beyond districts.")
    district_names: list[str] = Field(
        default_factory=list,
        description="Districts outside the hub's boundaries, by name (as police.uk gives them).")
    area: dict[str, Any] | None = Field(
        default=None,
        description="The group's own area as a GeoJSON Polygon/MultiPolygon geometry (or a "
                    "Feature holding one), lon/lat WGS84. Resolved to the wards whose area lies "
                    "inside it by at least area_min_overlap.")
    area_min_overlap: float = Field(default=0.5, gt=0.0, le=1.0,
                                    description="Fraction of a ward's area that must lie inside "
                                                "`area` for the ward to be subscribed.")
    county_wide: bool = Field(default=False,
                              description="Every district the boundaries place in this county.")
    categories: list[str] = Field(default_factory=lambda: ["*"])
    protocols: list[str] = Field(default_factory=list,
                                 description="Protocol ids the group receives under.")
    officer: str

    @field_validator("area")
    @classmethod
    def _area_is_a_polygon(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            group_area_geometry(v)  # raises ValueError with the reason
        return v


def group_area_geometry(area: dict[str, Any]) -> Any:
    """The shapely geometry of a group's ``area`` (a GeoJSON geometry or Feature)."""
    from shapely.geometry import shape

    geom_json = area.get("geometry") if area.get("type") == "Feature" else area
    try:
        geom = shape(geom_json)
    except Exception as exc:  # shapely raises several unrelated types for bad GeoJSON
        raise ValueError(f"not a GeoJSON geometry: {exc}") from exc
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"must be a Polygon or MultiPolygon, got {geom.geom_type}")
    if geom.is_empty or not geom.is_valid:
        raise ValueError("polygon is empty or self-intersecting")
    return geom


class County(_Strict):
    county: str
    partners: list[Partner]
    groups: list[Group]
    #: SHA-256 of the officer trust-anchor file the deployment mounts (services/core/
    #: officer_trust.py). The officers approve it with the county; without it, or with a file
    #: that does not match, no officer key is trusted and no protocol is live.
    officer_keys_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("officer_keys_sha256", mode="before")
    @classmethod
    def _quoted(cls, v: Any) -> Any:
        if isinstance(v, int | float):
            # 64 hex digits that happen to be all digits (or digits, 'e', digits) are a number
            # to YAML, and the leading zeros are lost: say so instead of "not a string".
            raise ValueError("put the fingerprint in quotes: YAML read it as a number")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> County:
        ids = [p.id for p in self.partners] + [g.id for g in self.groups]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"ids must be unique across partners and groups: {dupes}")
        return self

    def partner(self, pid: str) -> Partner | None:
        return next((p for p in self.partners if p.id == pid), None)


def load_county(path: Path) -> County:
    return load_file(County, path)
