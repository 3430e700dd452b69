"""The county configuration an officer edits: partners, their feeds, and the tasking groups with
their areas and categories. Protocols are separate documents (see services/depersonalise)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.core.yamlconf import load_file

FeedName = Literal["police", "fire", "health", "council"]
Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Partner(_Strict):
    id: str = Slug
    name: str
    kind: Literal["police", "fire", "health", "council"]
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
    categories: list[str] = Field(default_factory=lambda: ["*"])
    protocols: list[str] = Field(default_factory=list,
                                 description="Protocol ids the group receives under.")
    officer: str


class County(_Strict):
    county: str
    partners: list[Partner]
    groups: list[Group]

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
