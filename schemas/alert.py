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
    expected: float = Field(description="Baseline expectation of the count.")
    p_value: float = Field(description="Upper-tail p-value of the count given expected (see "
                                       "method): Poisson, negative binomial, or Monte Carlo.")
    bh_threshold: float = Field(description="Benjamini-Hochberg critical value it passed.")
    gi_z: float | None = Field(description="Getis-Ord Gi* z-score over ward adjacency.")
    neighbours: list[str] = Field(description="Neighbouring wards in the cluster.")
    protocol: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*@\d+$",
                          description="id@version of the protocol the counts derive from.")
    raised_at: datetime
    # Added by issue 17; optional so alerts written before it still read.
    method: str | None = Field(default=None, description=(
        '"nb-window", "nb-cusum", "nb-window+cusum" or "scan"; absent: the Poisson/EWMA test.'))
    dispersion: float | None = Field(default=None, description=(
        "Negative-binomial alpha the test allowed for (variance = mu + alpha mu^2)."))
    cluster_wards: list[str] = Field(default_factory=list, description=(
        "Other wards of the same space-time cluster (one hot spot, one p-value)."))
    late: bool = Field(default=False, description="Raised after late records changed a window.")
    why: str | None = Field(default=None, description=(
        "Why it was raised, in words: observed, expected, method, how unusual."))
