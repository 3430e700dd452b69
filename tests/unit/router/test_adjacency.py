"""Ward adjacency built from the real boundary file, plus the loader's error handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import box

from services.core.config.errors import ConfigError
from services.router.hotspots.adjacency import (
    DEFAULT_WARDS_PATH,
    WardFeature,
    build_adjacency,
    load_ward_districts,
    load_ward_features,
    ward_adjacency,
)
from tests.unit.router import HERTS_LAD_CODES


@pytest.fixture(scope="module")
def adjacency() -> dict[str, frozenset[str]]:
    return ward_adjacency()


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return {f.ward_code: f.ward_name for f in load_ward_features()}


def code_of(names: dict[str, str], ward_name: str) -> str:
    (code,) = [c for c, n in names.items() if n == ward_name]
    return code


class TestRealBoundaries:
    def test_given_the_default_file_then_every_ward_has_an_entry(
            self, adjacency: dict[str, frozenset[str]]) -> None:
        assert DEFAULT_WARDS_PATH.is_file()
        assert len(adjacency) == 231

    def test_given_tring_central_then_its_neighbours_are_the_other_tring_wards_and_aldbury(
            self, adjacency: dict[str, frozenset[str]], names: dict[str, str]) -> None:
        found = {names[w] for w in adjacency[code_of(names, "Tring Central")]}
        assert found == {"Tring East", "Tring West and Rural", "Aldbury and Wigginton"}

    def test_given_watford_central_then_it_borders_a_ward_across_the_district_line(
            self, adjacency: dict[str, frozenset[str]], names: dict[str, str]) -> None:
        found = {names[w] for w in adjacency[code_of(names, "Central")]}
        assert {"Nascot", "Callowland", "Oxhey", "Bushey North"} <= found  # Bushey: Hertsmere

    def test_given_any_pair_then_adjacency_is_symmetric_and_never_reflexive(
            self, adjacency: dict[str, frozenset[str]]) -> None:
        for ward, neighbours in adjacency.items():
            assert ward not in neighbours
            for other in neighbours:
                assert ward in adjacency[other], (ward, other)

    def test_given_every_hertfordshire_ward_then_each_has_at_least_one_neighbour(
            self, adjacency: dict[str, frozenset[str]]) -> None:
        districts = load_ward_districts()
        herts = [w for w, d in districts.items() if d in HERTS_LAD_CODES]
        assert len(herts) == 186
        lonely = [w for w in herts if not adjacency[w] & set(herts)]
        assert lonely == []

    def test_given_separate_counties_then_no_ward_neighbours_one_in_another_county(
            self, adjacency: dict[str, frozenset[str]]) -> None:
        districts = load_ward_districts()

        def county(ward: str) -> str:
            return "herts" if districts[ward] in HERTS_LAD_CODES else districts[ward]

        crossings = [(w, n) for w, ns in adjacency.items() for n in ns if county(w) != county(n)]
        assert crossings == []

    def test_given_a_sliver_gap_between_true_neighbours_then_the_tolerance_bridges_it(
            self, adjacency: dict[str, frozenset[str]], names: dict[str, str]) -> None:
        hatfield_east = code_of(names, "Hatfield East")
        panshanger = code_of(names, "Panshanger")
        assert panshanger in adjacency[hatfield_east]
        strict = build_adjacency(load_ward_features(), tolerance_deg=0.0)
        assert panshanger not in strict[hatfield_east]

    def test_given_repeated_calls_then_the_cache_hands_out_independent_copies(self) -> None:
        first = ward_adjacency()
        first.clear()
        assert len(ward_adjacency()) == 231


def square(code: str, x: float, y: float) -> WardFeature:
    return WardFeature(code, code, "L1", "Dist", box(x, y, x + 1, y + 1))


class TestBuildAdjacency:
    def test_given_squares_sharing_an_edge_or_corner_then_they_neighbour_and_far_ones_do_not(
            self) -> None:
        graph = build_adjacency([square("a", 0, 0), square("b", 1, 0), square("c", 2, 1),
                                 square("d", 9, 9)])
        assert graph == {"a": {"b"}, "b": {"a", "c"}, "c": {"b"}, "d": frozenset()}

    def test_given_a_gap_wider_than_the_tolerance_then_wards_are_not_neighbours(self) -> None:
        graph = build_adjacency([square("a", 0, 0), square("b", 1.001, 0)])
        assert graph["a"] == frozenset()

    def test_given_duplicate_ward_codes_then_it_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="duplicate ward codes: a"):
            build_adjacency([square("a", 0, 0), square("a", 1, 0)])


class TestLoader:
    def test_given_a_missing_file_then_config_error_names_it(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope.geojson"
        with pytest.raises(ConfigError, match=r"nope\.geojson"):
            load_ward_features(missing)

    def test_given_a_feature_without_a_ward_code_then_config_error_names_the_field(
            self, tmp_path: Path) -> None:
        path = tmp_path / "wards.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature",
            "properties": {"ward_name": "X", "lad_code": "L", "lad_name": "D"},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        }]}))
        with pytest.raises(ConfigError, match=r"features\[0\]\.properties\.ward_code"):
            load_ward_features(path)

    def test_given_a_point_geometry_then_config_error_says_polygon_expected(
            self, tmp_path: Path) -> None:
        path = tmp_path / "wards.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature",
            "properties": {"ward_code": "W", "ward_name": "X", "lad_code": "L", "lad_name": "D"},
            "geometry": {"type": "Point", "coordinates": [0, 0]},
        }]}))
        with pytest.raises(ConfigError, match="expected Polygon or MultiPolygon"):
            load_ward_features(path)

    def test_given_an_explicit_path_then_it_is_used_instead_of_the_default(
            self, tmp_path: Path) -> None:
        path = tmp_path / "two.geojson"
        features = [{
            "type": "Feature",
            "properties": {"ward_code": code, "ward_name": code, "lad_code": "L", "lad_name": "D"},
            "geometry": {"type": "Polygon", "coordinates": [
                [[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]]},
        } for code, x in (("W1", 0), ("W2", 1))]
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        assert ward_adjacency(path) == {"W1": {"W2"}, "W2": {"W1"}}


def test_given_no_wards_then_the_adjacency_is_empty() -> None:
    assert build_adjacency([]) == {}
