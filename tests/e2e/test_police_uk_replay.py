"""The real police.uk month (Essex, January 2018) imported through the CLI: per-district counts
delivered to the county analysts equal the file's own counts."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from demo.cluster import LocalHub
from services.core.config.settings import REPO_ROOT
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
FILE = REPO_ROOT / "deploy" / "data" / "police-uk" / "2018-01-essex-street.csv"


@pytest.fixture(scope="module")
def essex_hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[LocalHub]:
    hub = start_hub(kafka_broker, tmp_path_factory.mktemp("essex"), REPO_ROOT / "deploy" / "essex")
    yield hub
    hub.stop()


def file_counts() -> Counter[str]:
    """Counted straight from the CSV by the test's own reading of the LSOA name ("Basildon
    001A" -> "Basildon"), not by the importer's code, so an importer bug cannot hide."""
    with FILE.open(newline="", encoding="utf-8") as fh:
        return Counter(re.sub(r"\s+\d{3}[A-Z]$", "", row["LSOA name"].strip()) or "unknown"
                       for row in csv.DictReader(fh))


def hotspot_metrics(hub: LocalHub) -> dict[str, float]:
    text = httpx.get(f"{hub.url('router')}/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(
        r"^(s115hub_router_hotspot_(?:state_keys|records_total\{[^}]*\}|late_events|"
        r"snapshot_bytes)) (\S+)$", text, re.M)}


def test_given_the_real_month_then_district_counts_equal_the_files(essex_hub: LocalHub) -> None:
    assert essex_hub.settings is not None
    assert essex_hub.boot is not None
    run = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "import", "police-uk", str(FILE),
         "--partner", "essex-police"],
        env=essex_hub.env(), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "14786 accepted, 0 rejected" in run.stdout, run.stdout[-500:]

    group = essex_hub.boot.county.groups[0]
    subscribed = {n.casefold() for n in group.district_names}
    want = {d: n for d, n in file_counts().items() if d.casefold() in subscribed}
    topic = f"{essex_hub.settings.topic_prefix}.deliver.{group.id}"
    delivered = wait_for(lambda: read_json(essex_hub.settings, topic),  # type: ignore[arg-type]
                         lambda recs: len(recs) >= sum(want.values()), timeout=240,
                         what=f"{sum(want.values())} Essex deliveries")
    got = Counter(r["district_name"] for r in delivered)
    print(f"file rows {sum(file_counts().values())}, for the group's districts "
          f"{sum(want.values())}, delivered {len(delivered)}")
    print(f"hot-spot stage after the replay: {hotspot_metrics(essex_hub)}")
    assert sum(want.values()) > 10_000, "the file's own count should cover most rows"
    assert got == want
    assert len({r["hub_record_id"] for r in delivered}) == len(delivered), "duplicates delivered"
