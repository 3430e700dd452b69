"""Ward adjacency derived from the real ward boundaries.

Two wards are neighbours when their polygons come within ``tolerance_deg`` of each other
("queen" contiguity: a shared corner counts). A tolerance is needed because the published
boundaries are simplified and carry sliver gaps: in the 2013 file shipped under
deploy/data/boundaries the widest gap between wards that really share a boundary is about
2.6e-4 degrees (~18-28 m), while the nearest pairs that do not share one are 4e-4 degrees or more
apart. The default of 3e-4 degrees sits between the two. ``dwithin`` on an STRtree is the same
test as buffering every polygon by the tolerance, without building the buffers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shapely import STRtree
from shapely.errors import GeometryTypeError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from services.core.config.errors import ConfigError

# services/router/hotspots/adjacency.py -> parents[3] is the repository root.
DEFAULT_WARDS_PATH = Path(__file__).resolve().parents[3] / "deploy/data/boundaries/wards.geojson"
DEFAULT_TOLERANCE_DEG = 3e-4

_REQUIRED_PROPERTIES = ("ward_code", "ward_name", "lad_code", "lad_name")


@dataclass(frozen=True, slots=True)
class WardFeature:
    ward_code: str
    ward_name: str
    lad_code: str
    lad_name: str
    geometry: BaseGeometry


def _resolve(path: str | Path | None) -> Path:
    return (Path(path) if path is not None else DEFAULT_WARDS_PATH).resolve()


def load_ward_features(path: str | Path | None = None) -> list[WardFeature]:
    """Read ward polygons (WGS84 GeoJSON FeatureCollection) in file order."""
    resolved = _resolve(path)
    try:
        document = json.loads(resolved.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read ward boundaries: {exc}", file=str(resolved)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=str(resolved),
                          line=exc.lineno) from exc
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        raise ConfigError("expected a GeoJSON FeatureCollection", file=str(resolved),
                          field="features")
    return [_parse_feature(raw, index, str(resolved)) for index, raw in enumerate(features)]


def _parse_feature(raw: Any, index: int, file: str) -> WardFeature:
    props = raw.get("properties") if isinstance(raw, dict) else None
    if not isinstance(props, dict):
        raise ConfigError("feature has no properties", file=file, field=f"features[{index}]")
    for name in _REQUIRED_PROPERTIES:
        if not isinstance(props.get(name), str) or not props[name]:
            raise ConfigError("missing or empty", file=file,
                              field=f"features[{index}].properties.{name}")
    try:
        geometry = shape(raw["geometry"])
    except (KeyError, TypeError, AttributeError, ValueError, GeometryTypeError) as exc:
        raise ConfigError(f"unreadable geometry: {exc}", file=file,
                          field=f"features[{index}].geometry") from exc
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise ConfigError(f"expected Polygon or MultiPolygon, got {geometry.geom_type}",
                          file=file, field=f"features[{index}].geometry")
    return WardFeature(props["ward_code"], props["ward_name"], props["lad_code"],
                       props["lad_name"], geometry)


def build_adjacency(features: Sequence[WardFeature],
                    tolerance_deg: float = DEFAULT_TOLERANCE_DEG) -> dict[str, frozenset[str]]:
    """Symmetric neighbour sets for already-loaded wards; every ward gets a (maybe empty) entry."""
    if tolerance_deg < 0:
        raise ConfigError(f"tolerance must be >= 0, got {tolerance_deg}", field="tolerance_deg")
    codes = [f.ward_code for f in features]
    if len(set(codes)) != len(codes):
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        raise ConfigError(f"duplicate ward codes: {', '.join(duplicates)}", field="ward_code")
    if not features:
        return {}  # a county outside the boundaries file: no study area (shapely refuses [])
    geometries = [f.geometry for f in features]
    tree = STRtree(geometries)
    if tolerance_deg > 0:
        left, right = tree.query(geometries, predicate="dwithin", distance=tolerance_deg)
    else:
        left, right = tree.query(geometries, predicate="intersects")
    neighbours: dict[str, set[str]] = {code: set() for code in codes}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        if a != b:
            # Both directions are added so one-sided slivers still give a symmetric graph.
            neighbours[codes[a]].add(codes[b])
            neighbours[codes[b]].add(codes[a])
    return {code: frozenset(found) for code, found in neighbours.items()}


def ward_districts(features: Iterable[WardFeature]) -> dict[str, str]:
    """ward_code -> lad_code, the district map the detector stamps on alerts."""
    return {f.ward_code: f.lad_code for f in features}


@lru_cache(maxsize=8)
def _cached(path: Path, tolerance_deg: float) -> tuple[Mapping[str, frozenset[str]],
                                                       Mapping[str, str]]:
    features = load_ward_features(path)
    return build_adjacency(features, tolerance_deg), ward_districts(features)


def ward_adjacency(path: str | Path | None = None,
                   tolerance_deg: float = DEFAULT_TOLERANCE_DEG) -> dict[str, frozenset[str]]:
    """Adjacency for a boundaries file, computed once per (file, tolerance) per process.

    A fresh dict is returned each call so a caller that edits it cannot corrupt the cache.
    """
    return dict(_cached(_resolve(path), tolerance_deg)[0])


def load_ward_districts(path: str | Path | None = None) -> dict[str, str]:
    """ward_code -> lad_code for a boundaries file (shares the adjacency cache)."""
    return dict(_cached(_resolve(path), DEFAULT_TOLERANCE_DEG)[1])
