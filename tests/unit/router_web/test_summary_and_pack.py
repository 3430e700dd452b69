"""The page's period summary (counts, change, significance, district-only, trends, records) and
the tasking pack printed to a real PDF by the Debian chromium, its text read back with
pdftotext (poppler-utils)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.alert import HotspotAlert
from services.core.areas import AreaIndex
from services.router.web import summary
from services.router.web.pack import pack_html
from services.router.web.pdf import render_pdf
from services.router.web.svgmap import ward_svg
from tests.unit.router_web.conftest import shared

START = datetime(2026, 3, 2, tzinfo=UTC)
END = START + timedelta(days=7)
CALLOWLAND, CENTRAL = "E05004838", "E05004839"
WARDS = {CALLOWLAND: "Callowland", CENTRAL: "Central"}


def _at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat()


def _records() -> list:
    recs = [shared(f"now-{i}", _at(1 + i / 10)) for i in range(14)]          # 14 this week
    recs += [shared(f"prev-{i}", _at(-3)) for i in range(3)]                 # 3 the week before
    recs += [shared(f"c-{i}", _at(2), ward=CENTRAL, category="drugs") for i in range(2)]
    recs += [shared("d-1", _at(3), ward=None), shared("d-2", _at(4), ward=None)]
    recs += [shared("tagged", _at(2), victim_dob="18-64", tags=["forced-entry", "rear-door"])]
    return recs


def test_summary_counts_change_significance_and_district_only() -> None:
    doc = summary.summarise(_records(), WARDS, START, END, suppress_below=5)
    by = {w["ward_code"]: w for w in doc["wards"]}
    assert by[CALLOWLAND]["count"] == 15
    assert by[CALLOWLAND]["previous"] == 3
    assert by[CALLOWLAND]["change"] == 12
    assert by[CALLOWLAND]["significant"]
    assert by[CALLOWLAND]["direction"] == "rise"
    assert by[CENTRAL]["count_shown"] == "<5"
    assert not by[CENTRAL]["significant"]
    assert doc["district_only"] == 2
    assert doc["total"] == 19
    assert doc["has_baseline"] is False
    assert by[CALLOWLAND]["band"] == "no-baseline"


def test_significance_is_one_sided_in_the_direction_of_change() -> None:
    assert summary.change_p_value(10, 2) == pytest.approx(0.0193, abs=1e-4)
    assert summary.change_p_value(2, 10) == summary.change_p_value(10, 2)
    assert summary.change_p_value(3, 3) == 1.0
    assert summary.significance(1, 0)["significant"] is False


def test_filters_trend_and_the_records_behind_a_ward() -> None:
    recs = _records()
    doc = summary.summarise(recs, WARDS, START, END, suppress_below=5, category="drugs")
    assert doc["total"] == 2
    t = summary.trend(recs, START, END, ward=CALLOWLAND)
    assert t["bucket"] == "day"
    assert sum(t["series"]["burglary"]) == 18
    assert t["period_start_index"] == 21
    listed = summary.ward_records(recs, START, END, ward=CALLOWLAND)
    assert listed["total"] == 15
    [tagged] = [r for r in listed["records"] if r["hub_record_id"] == "tagged"]
    assert "tags: forced-entry, rear-door" in tagged["released"]
    assert summary.ward_records(recs, START, END, ward="")["total"] == 2


def test_the_tasking_pack_prints_to_a_pdf_whose_text_has_every_section(
        areas: AreaIndex, tmp_path: Path) -> None:
    if shutil.which("chromium") is None or shutil.which("pdftotext") is None:
        pytest.fail("needs Debian chromium and poppler-utils (apt-get install chromium "
                    "poppler-utils)")
    watford = {w.code: w.name for w in areas.wards_in("E07000103")}
    alert = HotspotAlert(
        alert_id="a1", group="grp-watford", ward_code=CALLOWLAND, ward_name="Callowland",
        district_code="E07000103", category="burglary", window="week", window_start=START,
        window_end=END, count="15", expected=3.5, p_value=0.000321, bh_threshold=0.001,
        gi_z=2.41, neighbours=[CENTRAL], protocol="police-district@1", raised_at=END)
    html = pack_html(group="grp-watford", name="Watford Tasking Group", start=START, end=END,
                     records=_records(), alerts=[alert], wards=watford,
                     svg=ward_svg(areas, watford), suppress_below=5,
                     protocol_fields={"police-district@1": ["victim_dob", "suspect_dob"]},
                     generated_at=END, generated_by="ann@watford")
    pdf = render_pdf(html)
    assert pdf.startswith(b"%PDF")
    (tmp_path / "pack.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "pack.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    for expected in ("Watford Tasking Group: tasking pack", "02 March 2026 to 08 March 2026",
                     "Ward map", "Top wards", "Category trends", "Alerts",
                     "Modus operandi tags", "What was withheld or generalised",
                     "Callowland", "small counts", "0.000321", "tags: forced-entry",
                     "placed only at district level", "suspect_dob", "<5"):
        assert expected in text, expected
    # The map is drawn: every Watford ward's name is on it.
    for name in watford.values():
        assert name in text, name


def test_a_small_count_is_not_given_back_by_the_change_or_its_p_value(areas: AreaIndex) -> None:
    # Central: 2 this period, 0 before. "<5, 0, +2" or a p-value beside it would undo the "<5".
    doc = summary.summarise(_records(), WARDS, START, END, suppress_below=5)
    central = next(w for w in doc["wards"] if w["ward_code"] == CENTRAL)
    assert (central["count_shown"], central["change_shown"]) == ("<5", "")
    assert summary.change_shown(15, 3, 5) == ""  # 3 before is small: 15 - (+12) gives it back
    assert summary.change_shown(15, 0, 5) == "+15"
    watford = {w.code: w.name for w in areas.wards_in("E07000103")}
    html = pack_html(group="grp-watford", name="Watford", start=START, end=END,
                     records=_records(), alerts=[], wards=watford, svg=ward_svg(areas, watford),
                     suppress_below=5, generated_at=END, generated_by="ann@watford")
    top = html.split("<h2>Top wards</h2>", 1)[1].split("<h2>", 1)[0]
    central_row = top.split(">Central<", 1)[1].split("</tr>", 1)[0]
    assert "+2" not in central_row
    assert "p=" not in central_row
    assert "small counts" in central_row


def test_a_record_released_to_the_hour_is_listed_by_the_hour_whatever_its_source_said() -> None:
    # The partner's time_precision says "minute" (its source); the protocol released the hour.
    recs = [shared("h", "2026-03-03T21:00:00Z", time_precision="minute"),
            shared("m", "2026-03-03T21:00:00Z", time_precision="month")]
    listed = summary.ward_records(recs, START, END, ward=CALLOWLAND)
    assert {r["hub_record_id"]: r["time_bucket"] for r in listed["records"]} == {
        "h": "hour", "m": "month"}
