"""Ward and district lookup on the real boundaries (point-in-polygon with an STR-tree).

Lives in the shared package because depersonalise derives area codes from precise points, the
router resolves group polygons to wards, and the demo places synthetic people inside real wards.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True)
class Ward:
    code: str
    name: str
    district_code: str
    district_name: str
    geometry: BaseGeometry
    #: No population data is at hand, so the "population centre" is the polygon's
    #: representative point (always inside the ward, unlike a centroid).
    point: tuple[float, float]


class AreaIndex:
    def __init__(self, wards: list[Ward], district_county: dict[str, str]) -> None:
        self.wards = {w.code: w for w in wards}
        self._list = wards
        self._tree = STRtree([w.geometry for w in wards])
        self.district_names = {w.district_code: w.district_name for w in wards}
        self.district_by_name = {w.district_name.casefold(): w.district_code for w in wards}
        self.district_county = district_county

    @classmethod
    def load(cls, boundaries_dir: Path) -> AreaIndex:
        return _load(str(boundaries_dir))

    def locate(self, lat: float, lon: float) -> Ward | None:
        pt = Point(lon, lat)
        for i in self._tree.query(pt, predicate="intersects"):
            return self._list[int(i)]
        return None

    def districts_of_county(self, county: str) -> list[str]:
        """District codes the boundaries place in ``county``, which may be the boundary file's
        county name, that name without its parenthesised note ("Halton (unitary)" is Halton),
        or a district code (a unitary authority is its own county). Case does not matter."""
        want = county.strip().casefold()
        return sorted(code for code, name in self.district_county.items()
                      if want in (name.casefold(), _without_note(name).casefold(),
                                  code.casefold()))

    @property
    def counties(self) -> list[str]:
        return sorted(set(self.district_county.values()))

    def locate_many(self, points: list[tuple[float, float]]) -> list[Ward | None]:
        """``locate`` for a batch of (lat, lon) in one vectorised STRtree query (shapely 2):
        one call into GEOS for the batch instead of one per record."""
        import numpy as np
        import shapely

        out: list[Ward | None] = [None] * len(points)
        if not points:
            return out
        arr = np.asarray(points, dtype=float)
        src, hit = self._tree.query(shapely.points(arr[:, 1], arr[:, 0]), predicate="intersects")
        for i, j in zip(src.tolist(), hit.tolist(), strict=True):
            if out[i] is None:  # the first hit, as locate takes it
                out[i] = self._list[j]
        return out

    def wards_in(self, district_code: str) -> list[Ward]:
        return [w for w in self._list if w.district_code == district_code]

    def wards_intersecting(self, geom: BaseGeometry) -> list[str]:
        hits = self._tree.query(geom, predicate="intersects")
        return sorted(self._list[int(i)].code for i in hits)

    def random_point_in(self, ward_code: str, rng: random.Random) -> tuple[float, float]:
        """A uniform random (lat, lon) inside the ward, for synthetic records."""
        geom = self.wards[ward_code].geometry
        minx, miny, maxx, maxy = geom.bounds
        for _ in range(1000):
            lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if geom.contains(Point(lon, lat)):
                return round(lat, 6), round(lon, 6)
        return self.wards[ward_code].point


def _without_note(name: str) -> str:
    return re.sub(r"\s*\([^)]*\)\s*$", "", name)


@cache
def _load(boundaries_dir: str) -> AreaIndex:
    base = Path(boundaries_dir)
    data = json.loads((base / "wards.geojson").read_text(encoding="utf-8"))
    wards = []
    for f in data["features"]:
        p = f["properties"]
        geom = shape(f["geometry"])
        rp = geom.representative_point()
        wards.append(Ward(p["ward_code"], p["ward_name"], p["lad_code"], p["lad_name"], geom,
                          (round(rp.y, 6), round(rp.x, 6))))
    districts = json.loads((base / "districts.geojson").read_text(encoding="utf-8"))
    county = {f["properties"]["lad_code"]: f["properties"]["county"] for f in districts["features"]}
    return AreaIndex(wards, county)
