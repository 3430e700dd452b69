from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Location(BaseModel):
    """A WGS84 point. Precise locations are personal: sealed at rest, generalised on release."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=49.0, le=61.0, description="Latitude (Great Britain range).")
    lon: float = Field(ge=-9.0, le=2.5, description="Longitude (Great Britain range).")
