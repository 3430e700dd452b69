"""A record the risk gate holds for its ward survives kill -9 of depersonalise: it is not
committed, so the restarted service reads it again, holds it again, and releases it at ward
level when its ward cell fills. Real hub, real broker, SIGKILL.

Without the commit floor the two held records would have been committed with their batch and
lived only in the killed process's memory: the third record would arrive alone and the first two
never. That is what this test would catch.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest

from demo.cluster import LocalHub
from demo.synthetic import Generator
from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from tests.conftest import BrokerInfo
from tests.e2e.conftest import start_hub
from tests.kafka_read import read_topic, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

GROUP = "grp-watford"
WATFORD = "E07000103"
HELD = re.compile(r"^s115hub_depersonalise_records_held (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def hub(kafka_broker: BrokerInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    config = tmp_path_factory.mktemp("hold-config") / "hertfordshire"
    shutil.copytree(REPO_ROOT / "deploy" / "hertfordshire", config)
    police = config / "protocols" / "police-district.yaml"
    police.write_text(police.read_text() + "hold_hours: 6\n")
    h = start_hub(kafka_broker, tmp_path_factory.mktemp("hold-hub"), config)
    yield h
    h.stop()


def held(hub: LocalHub) -> float:
    try:
        text = httpx.get(f"{hub.url('depersonalise')}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1
    m = HELD.search(text)
    return float(m.group(1)) if m else 0.0


def publish(hub: LocalHub, gen: Generator, n: int) -> list[str]:
    assert hub.boot is not None
    ids = []
    with httpx.Client(base_url=hub.url("ingest"), timeout=30) as client:
        for _ in range(n):
            _, rec = gen.record("police")
            r = client.post("/v1/feeds/police/records", json=rec,
                            headers={"X-API-Key": hub.boot.api_keys["herts-police"]})
            assert r.status_code == 202, r.text
            ids.append(r.json()["hub_record_id"])
    return ids


def deliveries(hub: LocalHub) -> dict[str, SharedRecord]:
    assert hub.settings is not None
    out: dict[str, SharedRecord] = {}
    for m in read_topic(hub.settings, f"{hub.settings.topic_prefix}.deliver.{GROUP}"):
        rec = SharedRecord.model_validate_json(m.value)
        out.setdefault(rec.hub_record_id, rec)
    return out


def test_held_records_survive_kill9_and_leave_at_ward_level_when_the_cell_fills(
        hub: LocalHub) -> None:
    assert hub.settings is not None
    areas = AreaIndex.load(hub.settings.boundaries_dir)
    ward = sorted(w.code for w in areas.wards_in(WATFORD))[0]
    gen = Generator(areas, seed=15, wards=[ward])

    first = publish(hub, gen, 2)
    wait_for(lambda: held(hub), lambda n: n == 2, timeout=60,
             what="depersonalise to hold the first two records")
    assert not set(first) & set(deliveries(hub)), "a held record was delivered"

    hub.kill("depersonalise")
    hub.start_service("depersonalise")
    hub.wait_ready(services=("depersonalise",))
    wait_for(lambda: held(hub), lambda n: n == 2, timeout=90,
             what="the restarted depersonalise to read the held records again and hold them")

    third = publish(hub, gen, 1)
    got = wait_for(lambda: deliveries(hub), lambda d: set(first + third) <= set(d), timeout=60,
                   what="all three records at the group")
    assert {got[i].ward_code for i in first + third} == {ward}
    assert held(hub) == 0
