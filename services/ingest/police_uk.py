"""The police.uk "street" CSV layout, read into police incident records.

police.uk rows are already depersonalised open data: locations are snapped to map points and no
person is named. Months only, no times. ASB rows have no Crime ID, so a row's identity is its
file and line: importing the same file twice gives the same source ids, and so no duplicates.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CRIME_TYPES = {
    "Anti-social behaviour": "anti-social-behaviour",
    "Bicycle theft": "bicycle-theft",
    "Burglary": "burglary",
    "Criminal damage and arson": "criminal-damage-arson",
    "Drugs": "drugs",
    "Other crime": "other-crime",
    "Other theft": "other-theft",
    "Possession of weapons": "possession-of-weapons",
    "Public order": "public-order",
    "Robbery": "robbery",
    "Shoplifting": "shoplifting",
    "Theft from the person": "theft-from-the-person",
    "Vehicle crime": "vehicle-crime",
    "Violence and sexual offences": "violent-crime",
}

_LSOA_SUFFIX = re.compile(r"\s+\d{3}[A-Z]$")
UNKNOWN_DISTRICT = "unknown"


def district_of(lsoa_name: str) -> str:
    """'Basildon 001A' -> 'Basildon'; empty -> 'unknown'."""
    name = _LSOA_SUFFIX.sub("", lsoa_name.strip())
    return name or UNKNOWN_DISTRICT


def row_to_incident(row: dict[str, str], source: str, line: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "source_id": f"police-uk:{source}:{line}",
        "category": CRIME_TYPES.get(row["Crime type"], row["Crime type"]),
        "occurred_at": f"{row['Month']}-01T00:00:00Z",
        "time_precision": "month",
        "district_hint": district_of(row.get("LSOA name", "")),
    }
    if row.get("Latitude") and row.get("Longitude"):
        rec["location"] = {"lat": float(row["Latitude"]), "lon": float(row["Longitude"])}
    return rec


def read_street_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, police incident dict) for every row of a police.uk street file."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, row_to_incident(row, path.stem, reader.line_num)
