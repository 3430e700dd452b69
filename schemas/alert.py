"""A hot-spot alert as it leaves the hub on ``s115.hotspots.<group>``, with its evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class HotspotAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alert_id: str = Field(description="Stable id: the same (group, ward, category, window) gives "
                                      "the same id, so a re-emitted alert can be deduplicated.")
    group: str
    ward_code: str
    ward_name: str | None = None
    district_code: str | None = None
    category: str
    window: Literal["hour", "day", "week"]
    window_start: datetime
    window_end: datetime
    count: str = Field(description='Exact count, or "<N" when below the suppression threshold.')
    expected: float = Field(description="Baseline expectation (EWMA over trailing windows).")
    p_value: float = Field(description="Poisson upper-tail p-value of the count given expected.")
    bh_threshold: float = Field(description="Benjamini-Hochberg critical value it passed.")
    gi_z: float | None = Field(description="Getis-Ord Gi* z-score over ward adjacency.")
    neighbours: list[str] = Field(description="Neighbouring wards in the cluster.")
    protocol: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*@\d+$",
                          description="id@version of the protocol the counts derive from.")
    raised_at: datetime
