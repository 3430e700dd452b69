"""``location``: generalise a precise point ({lat, lon}) before it leaves the hub.

Parameters: ``to`` (required) one of

* ``ward`` - the ward code (GSS, e.g. E05012345) from ``ctx.area``; dropped when unknown.
* ``district`` - the district code, or its name when the code is unknown; dropped when neither.
* ``grid`` - the centre of the ``metres`` x ``metres`` cell holding the point (``metres`` required,
  50..10000). Cells come from an equirectangular approximation (111,320 m per degree of latitude,
  times cos(latitude) for longitude, taken at the cell row's centre so a row's cells line up). Over
  Great Britain the error is well under 1 % of the cell size, which is irrelevant for binning.
* ``ward_centre`` - the ward's representative point (inside the polygon). It approximates a
  population centre; the hub holds no population data.
* ``snap`` - a police.uk-like point: the nearest anchor of a fixed lattice with ~200 m spacing
  (anchors on the lattice vertices, so its cells are offset from ``grid`` cells). police.uk snaps
  to map points that each cover at least eight postal addresses; without address data the hub
  cannot give that guarantee, so in sparse rural areas an anchor may stand for a single dwelling.
  Prefer ``ward`` or ``district`` where that matters.

Point outputs are ``{"lat": float, "lon": float}`` rounded to 5 decimal places (~1 m).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from services.core.config.errors import ConfigError
from services.protocols.transforms.base import (
    DROP,
    Transform,
    TransformContext,
    check_choice,
    check_known,
    check_mapping,
    is_int,
)

TARGETS = ("ward", "district", "grid", "ward_centre", "snap")
GRID_MIN_METRES = 50
GRID_MAX_METRES = 10_000
SNAP_METRES = 200
METRES_PER_DEGREE_LAT = 111_320.0
DECIMALS = 5


def read_point(value: Any) -> tuple[float, float] | None:
    """(lat, lon) from a mapping or an object with ``lat``/``lon``; None if it is not a point."""
    if isinstance(value, Mapping):
        lat, lon = value.get("lat"), value.get("lon")
    else:
        lat, lon = getattr(value, "lat", None), getattr(value, "lon", None)
    if isinstance(lat, bool) or isinstance(lon, bool):
        return None
    if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
        return None
    lat, lon = float(lat), float(lon)
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 85 or abs(lon) > 180:
        return None
    return lat, lon


def _point(lat: float, lon: float) -> dict[str, float]:
    return {"lat": round(lat, DECIMALS), "lon": round(lon, DECIMALS)}


def _metres_per_degree_lon(lat: float) -> float:
    return METRES_PER_DEGREE_LAT * math.cos(math.radians(lat))


def grid_centre(lat: float, lon: float, metres: int) -> dict[str, float]:
    """Centre of the metres-square cell containing the point."""
    dlat = metres / METRES_PER_DEGREE_LAT
    centre_lat = (math.floor(lat / dlat) + 0.5) * dlat
    # Longitude step from the row's centre latitude, not the point's: every point in the row must
    # land on the same cell boundaries.
    dlon = metres / _metres_per_degree_lon(centre_lat)
    centre_lon = (math.floor(lon / dlon) + 0.5) * dlon
    return _point(centre_lat, centre_lon)


def snap_anchor(lat: float, lon: float, metres: int = SNAP_METRES) -> dict[str, float]:
    """Nearest vertex of the metres-spaced lattice."""
    dlat = metres / METRES_PER_DEGREE_LAT
    anchor_lat = round(lat / dlat) * dlat
    dlon = metres / _metres_per_degree_lon(anchor_lat)
    anchor_lon = round(lon / dlon) * dlon
    return _point(anchor_lat, anchor_lon)


class Location(Transform):
    name = "location"

    def validate(self, params: Mapping[str, Any]) -> None:
        check_known(check_mapping(params), ("to", "metres"), self.name)
        check_choice(params, "to", TARGETS, required=True)
        if params["to"] != "grid":
            if "metres" in params:
                raise ConfigError("only allowed with to: grid", field="metres")
            return
        if "metres" not in params:
            raise ConfigError("required with to: grid", field="metres")
        metres = params["metres"]
        if not is_int(metres) or not GRID_MIN_METRES <= metres <= GRID_MAX_METRES:
            raise ConfigError(f"must be a whole number of metres, {GRID_MIN_METRES}.."
                              f"{GRID_MAX_METRES}; got {metres!r}", field="metres")

    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        to = params["to"]
        area = ctx.area
        if to == "ward":
            return area.ward_code if area and area.ward_code else DROP
        if to == "district":
            if area and (area.district_code or area.district_name):
                return area.district_code or area.district_name
            return DROP
        if to == "ward_centre":
            if area is None or area.ward_point is None:
                return DROP
            return _point(*area.ward_point)
        point = read_point(value)
        if point is None:
            return DROP
        if to == "grid":
            return grid_centre(*point, params["metres"])
        return snap_anchor(*point)
