from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.shared import SharedRecord
from services.core.areas import AreaIndex
from services.core.config.settings import Settings


@pytest.fixture(scope="session")
def areas() -> AreaIndex:
    return AreaIndex.load(Settings().boundaries_dir)


def shared(rid: str, occurred: str | None, *, ward: str | None = "E05004838",
           district: str | None = "E07000103", category: str = "burglary",
           released: datetime | None = None, **fields: Any) -> SharedRecord:
    f: dict[str, Any] = dict(fields)
    if occurred is not None:
        f["occurred_at"] = occurred
    return SharedRecord(
        hub_record_id=rid, partner="herts-police", feed="police", category=category,
        ward_code=ward, ward_name="Callowland" if ward == "E05004838" else None,
        district_code=district, district_name="Watford" if district else None, fields=f,
        protocol="police-district@1", released_at=released or datetime(2026, 3, 2, 12, tzinfo=UTC))
