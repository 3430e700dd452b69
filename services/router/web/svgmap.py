"""The group's wards as an SVG drawn from the real boundaries: no tiles, nothing fetched. Pure.

Projection: equirectangular scaled by cos(mid latitude), which at county scale (tens of km) is
within a fraction of a percent of the Ordnance Survey grid and needs no projection library.
Polygons are simplified (Douglas-Peucker, topology-preserving) to about 20 m, invisible at page
size and a several-fold smaller document than the surveyed boundaries.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from html import escape

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from services.core.areas import AreaIndex, Ward

WIDTH = 800.0
SIMPLIFY_DEGREES = 0.0002


def _rings(geom: BaseGeometry) -> Iterable[list[tuple[float, float]]]:
    polys = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
    for poly in polys:
        if isinstance(poly, Polygon) and not poly.is_empty:
            yield list(poly.exterior.coords)
            for hole in poly.interiors:
                yield list(hole.coords)


def ward_svg(areas: AreaIndex, ward_codes: Iterable[str]) -> str:
    """One ``<path class="ward" id="ward-<code>">`` per ward, with its name as a tooltip."""
    wards: list[Ward] = [areas.wards[c] for c in sorted(set(ward_codes)) if c in areas.wards]
    if not wards:
        return ('<svg xmlns="http://www.w3.org/2000/svg" class="ward-map" viewBox="0 0 100 20">'
                '<text x="2" y="14">no wards</text></svg>')
    minx = min(w.geometry.bounds[0] for w in wards)
    miny = min(w.geometry.bounds[1] for w in wards)
    maxx = max(w.geometry.bounds[2] for w in wards)
    maxy = max(w.geometry.bounds[3] for w in wards)
    kx = math.cos(math.radians((miny + maxy) / 2))
    scale = WIDTH / max((maxx - minx) * kx, 1e-9)
    height = (maxy - miny) * scale

    def xy(lon: float, lat: float) -> str:
        return f"{(lon - minx) * kx * scale:.1f},{(maxy - lat) * scale:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ward-map" '
             f'viewBox="-2 -2 {WIDTH + 4:.0f} {height + 4:.0f}" role="img" '
             f'aria-label="Wards of the group">']
    labels = []
    # Label size from the ward count: a district's dozen wards get legible names, a county's
    # two hundred get small ones rather than a pile-up.
    size = max(6.0, min(14.0, 60.0 / math.sqrt(len(wards))))
    for w in wards:
        geom = w.geometry.simplify(SIMPLIFY_DEGREES, preserve_topology=True)
        d = " ".join("M" + " L".join(xy(x, y) for x, y in ring[:-1]) + " Z"
                     for ring in _rings(geom))
        parts.append(f'<path class="ward band-no-baseline" id="ward-{escape(w.code)}" '
                     f'data-code="{escape(w.code)}" data-name="{escape(w.name)}" '
                     f'tabindex="0" role="button" aria-label="{escape(w.name)}" '
                     f'fill-rule="evenodd" d="{d}"><title>{escape(w.name)} ({escape(w.code)})'
                     f'</title></path>')
        # The representative point is inside the ward (a centroid may not be).
        lx, ly = xy(w.point[1], w.point[0]).split(",")
        labels.append(f'<text class="ward-label" id="label-{escape(w.code)}" x="{lx}" '
                      f'y="{ly}" font-size="{size:.1f}" text-anchor="middle">'
                      f'<tspan class="name" x="{lx}">{escape(w.name)}</tspan>'
                      f'<tspan class="count" x="{lx}" dy="1.1em"></tspan></text>')
    parts.append('<g class="labels" aria-hidden="true">' + "".join(labels) + "</g>")
    parts.append("</svg>")
    return "".join(parts)
