from __future__ import annotations

import xml.etree.ElementTree as ET

from services.core.areas import AreaIndex
from services.router.web.svgmap import ward_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_one_path_per_ward_of_the_group_from_the_real_boundaries(areas: AreaIndex) -> None:
    watford = sorted(w.code for w in areas.wards_in("E07000103"))
    root = ET.fromstring(ward_svg(areas, [*watford, "E99999999"]))  # unknown code is skipped
    paths = root.findall(f"{SVG}path")
    assert sorted(p.get("data-code") or "" for p in paths) == watford
    for p in paths:
        assert p.get("id") == f"ward-{p.get('data-code')}"
        d = p.get("d") or ""
        assert d.startswith("M")
        assert d.count("Z") >= 1
        assert p.find(f"{SVG}title") is not None
    # Drawn to the viewBox: every coordinate lies inside it.
    _, _, w, _h = (float(v) for v in (root.get("viewBox") or "").split())
    xs = [float(c.split(",")[0]) for p in paths for c in (p.get("d") or "").replace("M", " ")
          .replace("L", " ").replace("Z", " ").split()]
    assert min(xs) >= -1
    assert max(xs) <= w


def test_no_wards_gives_an_svg_saying_so(areas: AreaIndex) -> None:
    assert "no wards" in ward_svg(areas, [])
