from __future__ import annotations

import math

import pytest

from schemas.location import Location as LocationModel
from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, AreaInfo, get_transform
from services.protocols.transforms.location import (
    METRES_PER_DEGREE_LAT,
    grid_centre,
    read_point,
    snap_anchor,
)
from tests.unit.depersonalise import make_ctx

loc = get_transform("location")
POINT = {"lat": 51.903456, "lon": -0.196789}
NO_AREA = AreaInfo(None, None, None, None, None)


def metres_between(a: dict[str, float], b: dict[str, float]) -> float:
    dy = (a["lat"] - b["lat"]) * METRES_PER_DEGREE_LAT
    dx = (a["lon"] - b["lon"]) * METRES_PER_DEGREE_LAT * math.cos(math.radians(a["lat"]))
    return math.hypot(dx, dy)


class TestAreaTargets:
    def test_given_to_ward_then_the_ward_code_is_released(self) -> None:
        assert loc.apply(POINT, {"to": "ward"}, make_ctx()) == "E05012345"

    def test_given_to_ward_and_no_known_ward_then_the_field_is_dropped(self) -> None:
        assert loc.apply(POINT, {"to": "ward"}, make_ctx(area=NO_AREA)) is DROP
        assert loc.apply(POINT, {"to": "ward"}, make_ctx(area=None)) is DROP

    def test_given_to_district_then_the_district_code_is_released(self) -> None:
        assert loc.apply(POINT, {"to": "district"}, make_ctx()) == "E07000243"

    def test_given_to_district_and_only_a_name_then_the_name_is_released(self) -> None:
        area = AreaInfo(None, None, None, "Stevenage", None)
        assert loc.apply(None, {"to": "district"}, make_ctx(area=area)) == "Stevenage"

    def test_given_to_district_and_no_district_then_the_field_is_dropped(self) -> None:
        assert loc.apply(POINT, {"to": "district"}, make_ctx(area=NO_AREA)) is DROP

    def test_given_to_ward_centre_then_the_ward_point_is_released(self) -> None:
        out = loc.apply(POINT, {"to": "ward_centre"}, make_ctx())
        assert out == {"lat": 51.90312, "lon": -0.19876}

    def test_given_to_ward_centre_and_no_ward_point_then_the_field_is_dropped(self) -> None:
        assert loc.apply(POINT, {"to": "ward_centre"}, make_ctx(area=NO_AREA)) is DROP


class TestGrid:
    def test_given_a_point_then_the_cell_centre_is_within_half_a_diagonal(self) -> None:
        out = loc.apply(POINT, {"to": "grid", "metres": 250}, make_ctx())
        assert out != POINT
        assert metres_between(out, POINT) <= 250 * math.sqrt(2) / 2 + 1

    def test_given_two_points_in_one_cell_then_both_get_the_same_centre(self) -> None:
        a = grid_centre(51.903456, -0.196789, 1000)
        b = grid_centre(51.903457, -0.196788, 1000)
        assert a == b

    def test_given_points_a_cell_apart_then_their_centres_differ(self) -> None:
        step = 1000 / METRES_PER_DEGREE_LAT
        assert grid_centre(51.9, -0.2, 1000) != grid_centre(51.9 + step, -0.2, 1000)

    def test_given_a_point_then_the_output_has_five_decimals_at_most(self) -> None:
        out = grid_centre(POINT["lat"], POINT["lon"], 50)
        assert all(round(v, 5) == v for v in out.values())

    def test_given_a_pydantic_location_then_it_is_read_like_a_mapping(self) -> None:
        model = LocationModel(lat=51.903456, lon=-0.196789)
        assert loc.apply(model, {"to": "grid", "metres": 500}, make_ctx()) == grid_centre(
            51.903456, -0.196789, 500)

    @pytest.mark.parametrize("value", [None, "51.9,-0.2", {"lat": "51.9", "lon": -0.2},
                                       {"lat": True, "lon": 0}, {"lat": math.nan, "lon": 0},
                                       {"lat": 51.9}, {"lat": 91.0, "lon": 0.0}])
    def test_given_something_that_is_not_a_point_then_the_field_is_dropped(
            self, value: object) -> None:
        assert read_point(value) is None
        assert loc.apply(value, {"to": "grid", "metres": 100}, make_ctx()) is DROP


class TestSnap:
    def test_given_a_point_then_it_moves_to_an_anchor_within_about_150_metres(self) -> None:
        out = loc.apply(POINT, {"to": "snap"}, make_ctx())
        assert out == snap_anchor(POINT["lat"], POINT["lon"])
        assert out != POINT
        assert metres_between(out, POINT) <= 200 * math.sqrt(2) / 2 + 1

    def test_given_nearby_points_then_they_share_an_anchor(self) -> None:
        assert snap_anchor(51.9, -0.2) == snap_anchor(51.90001, -0.20001)

    def test_given_no_point_then_the_field_is_dropped(self) -> None:
        assert loc.apply(None, {"to": "snap"}, make_ctx()) is DROP


class TestValidate:
    @pytest.mark.parametrize("params", [{"to": "ward"}, {"to": "district"},
                                        {"to": "ward_centre"}, {"to": "snap"},
                                        {"to": "grid", "metres": 50},
                                        {"to": "grid", "metres": 10_000}])
    def test_given_valid_parameters_then_they_validate(self, params: dict[str, object]) -> None:
        loc.validate(params)

    def test_given_no_to_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match="parameter 'to' is required; one of ward, district"):
            loc.validate({})

    @pytest.mark.parametrize("to", ["lsoa", "Ward", 3, None])
    def test_given_an_unknown_to_then_error_lists_the_choices(self, to: object) -> None:
        with pytest.raises(ConfigError, match="must be one of ward, district, grid, ward_centre, "
                                              r"snap; got .*\(field to\)"):
            loc.validate({"to": to})

    def test_given_grid_without_metres_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"required with to: grid \(field metres\)"):
            loc.validate({"to": "grid"})

    @pytest.mark.parametrize("metres", [49, 10_001, 0, -100, 250.0, "250", True])
    def test_given_grid_metres_out_of_range_or_not_whole_then_error_raised(
            self, metres: object) -> None:
        with pytest.raises(ConfigError,
                           match=r"must be a whole number of metres, 50..10000") as err:
            loc.validate({"to": "grid", "metres": metres})
        assert err.value.field == "metres"

    @pytest.mark.parametrize("to", ["ward", "district", "ward_centre", "snap"])
    def test_given_metres_with_a_target_other_than_grid_then_error_raised(self, to: str) -> None:
        with pytest.raises(ConfigError, match="only allowed with to: grid"):
            loc.validate({"to": to, "metres": 200})

    def test_given_a_misspelt_metres_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'meters'.*allowed: metres, to"):
            loc.validate({"to": "grid", "meters": 200})

