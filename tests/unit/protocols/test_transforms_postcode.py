from __future__ import annotations

import pytest

from services.core.config.errors import ConfigError
from services.protocols.transforms import DROP, get_transform
from services.protocols.transforms.postcode import parse
from tests.unit.protocols.transform_ctx import make_ctx, refusal

pc = get_transform("postcode")


def cut(value: object, to: str) -> object:
    return pc.apply(value, {"to": to}, make_ctx())


class TestPostcode:
    @pytest.mark.parametrize(("value", "outward", "sector"), [
        ("SG1 2AB", "SG1", "SG1 2"), ("sg12ab", "SG1", "SG1 2"), ("M1 1AE", "M1", "M1 1"),
        ("B33 8TH", "B33", "B33 8"), ("CR2 6XH", "CR2", "CR2 6"), ("DN55 1PT", "DN55", "DN55 1"),
        ("W1A 0AX", "W1A", "W1A 0"), ("EC1A 1BB", "EC1A", "EC1A 1"),
        ("  al1  3xx ", "AL1", "AL1 3"),
        ("GIR 0AA", "GIR", "GIR 0"),
    ])
    def test_given_a_full_postcode_then_outward_and_sector_are_cut_from_it(
            self, value: str, outward: str, sector: str) -> None:
        assert cut(value, "outward") == outward
        assert cut(value, "sector") == sector

    def test_given_an_outward_code_alone_then_it_is_kept_for_outward_only(self) -> None:
        assert cut("SG1", "outward") == "SG1"
        assert cut("SG1", "sector") is DROP

    @pytest.mark.parametrize("value", [None, "", "not a postcode", "SG1 2CB", "12 High St, SG1 2AB",
                                       "1SG 2AB", "SG1 2A", 12345, "SG1-2AB"])
    def test_given_an_unparseable_postcode_then_the_field_is_dropped(self, value: object) -> None:
        assert cut(value, "outward") is DROP
        assert cut(value, "sector") is DROP

    def test_given_parse_then_it_returns_outward_and_inward(self) -> None:
        assert parse("sg1 2ab") == ("SG1", "2AB")


class TestValidate:
    @pytest.mark.parametrize("to", ["outward", "sector"])
    def test_given_a_known_target_then_it_validates(self, to: str) -> None:
        assert refusal(pc, {"to": to}) is None

    def test_given_no_to_then_error_raised(self) -> None:
        with pytest.raises(ConfigError,
                           match=r"parameter 'to' is required; one of outward, sector"):
            pc.validate({})

    @pytest.mark.parametrize("to", ["full", "district", "unit", 1])
    def test_given_an_unknown_target_then_error_raised(self, to: object) -> None:
        with pytest.raises(ConfigError, match=r"must be one of outward, sector; got .*"
                                              r"\(field to\)"):
            pc.validate({"to": to})

    def test_given_an_unknown_parameter_then_error_raised(self) -> None:
        with pytest.raises(ConfigError, match=r"unknown parameter 'keep_space'.*allowed: to"):
            pc.validate({"to": "sector", "keep_space": True})
