"""Synthetic partner records placed inside real wards, with synthetic people.

Nobody here is real: names are drawn from short lists, NHS numbers are random with a valid check
digit, phone numbers are in Ofcom's drama ranges. ``canary`` plants a unique token in every
personal field and in free text, so a leak scan can look for exactly what was planted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.feeds import FEED_NAMES
from services.core.areas import AreaIndex

FIRST = ["Amelia", "Oliver", "Isla", "George", "Ava", "Harry", "Mia", "Noah", "Ruby", "Jack",
         "Freya", "Leo", "Grace", "Arthur", "Evie", "Oscar", "Poppy", "Alfie", "Ivy", "Theo"]
LAST = ["Ashworth", "Brierley", "Calloway", "Dunmore", "Everett", "Fairbrother", "Gillingham",
        "Hartnell", "Ingleby", "Jessop", "Kingsley", "Lockwood", "Merriweather", "Northcott",
        "Oakridge", "Pennington", "Quarrington", "Rowntree", "Stainforth", "Thackeray"]
STREETS = ["Mill Lane", "Church Road", "Station Road", "Park Avenue", "High Street", "Queens Road",
           "Orchard Close", "Victoria Street", "Manor Way", "The Green"]
POLICE_CATS = ["anti-social-behaviour", "burglary", "criminal-damage-arson", "drugs",
               "public-order", "robbery", "shoplifting", "vehicle-crime", "violent-crime"]
FIRE_CATS = ["deliberate-primary-fire", "deliberate-secondary-fire", "dwelling-fire-no-smoke-alarm",
             "violence-against-staff"]
COUNCIL_CATS = ["anti-social-behaviour", "noise", "fly-tipping", "graffiti", "abandoned-vehicle"]
METHODS = ["body-part", "blunt-object", "knife-or-sharp", "glass-or-bottle", "other"]
PLACES = ["public-place", "licensed-premises", "home", "workplace", "transport"]
FEED_PARTNER = {"police": "herts-police", "fire": "herts-fire", "health": "enherts-nhs"}


def nhs_number(rng: random.Random) -> str:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        check = 11 - sum(d * (10 - i) for i, d in enumerate(digits)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, digits)) + str(check)
            return f"{s[:3]} {s[3:6]} {s[6:]}"


@dataclass
class Person:
    name: str
    dob: date
    address: str
    phone: str
    email: str
    postcode: str


class Generator:
    """Deterministic for a seed. ``wards`` limits where records fall (default: all Herts wards)."""

    def __init__(self, areas: AreaIndex, seed: int = 115, wards: list[str] | None = None,
                 canaries: bool = False) -> None:
        self.areas = areas
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data must replay from a seed
        self.wards = wards or sorted(
            w.code for w in areas.wards.values()
            if areas.district_county.get(w.district_code) == "Hertfordshire")
        self.canaries = canaries
        self.planted: list[str] = []
        self.n = 0

    def _tag(self, value: str) -> str:
        if not self.canaries:
            return value
        token = f"CANARY{self.n:06d}X{len(self.planted):05d}"
        self.planted.append(token)
        return f"{value} {token}"

    def person(self) -> Person:
        r = self.rng
        first, last = r.choice(FIRST), r.choice(LAST)
        return Person(
            name=self._tag(f"{first} {last}"),
            dob=date(r.randint(1940, 2008), r.randint(1, 12), r.randint(1, 28)),
            address=self._tag(f"{r.randint(1, 199)} {r.choice(STREETS)}"),
            phone=f"07700 900{r.randint(0, 999):03d}",
            email=self._tag(f"{first}.{last}@example.org").replace(" ", "").lower()
            if not self.canaries else f"{first}.{last}.{self.n}@example.org".lower(),
            postcode=f"SG{r.randint(1, 19)} {r.randint(0, 9)}{r.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                     f"{r.choice('ABDEFGHJLNPQRSTUWXYZ')}",
        )

    def place(self) -> tuple[str, dict[str, float]]:
        ward = self.rng.choice(self.wards)
        lat, lon = self.areas.random_point_in(ward, self.rng)
        return ward, {"lat": lat, "lon": lon}

    def when(self, now: datetime) -> datetime:
        return (now - timedelta(minutes=self.rng.randint(0, 72 * 60))).replace(microsecond=0)

    def record(self, feed: str, now: datetime | None = None) -> tuple[str, dict[str, Any]]:
        """(ward code, record) for ``feed``."""
        now = now or datetime.now(UTC)
        self.n += 1
        r = self.rng
        ward, loc = self.place()
        sid = f"{feed[:3].upper()}-{r.getrandbits(48):012x}"
        p = self.person()
        if feed == "police":
            q = self.person()
            rec: dict[str, Any] = {
                "source_id": sid, "category": r.choice(POLICE_CATS),
                "occurred_at": self.when(now).isoformat(), "location": loc,
                "victim_name": p.name, "victim_dob": p.dob.isoformat(),
                "suspect_name": q.name, "suspect_dob": q.dob.isoformat(), "address": p.address,
                "summary": self._tag(f"Victim {p.name} of {p.address} reported an incident; "
                                     f"call back on {p.phone}."),
            }
        elif feed == "fire":
            rec = {
                "source_id": sid, "category": r.choice(FIRE_CATS),
                "property_type": r.choice(["dwelling", "vehicle", "outdoor", "refuse"]),
                "occurred_at": self.when(now).isoformat(), "location": loc,
                "occupier_name": p.name, "occupier_phone": p.phone, "address": p.address,
                "narrative": self._tag(f"Crew attended; occupier {p.name} at {p.address}."),
            }
        elif feed == "health":
            # Arrival is 40 minutes after the assault and must not be in the future (ingest
            # refuses event times ahead of its clock).
            t = self.when(now - timedelta(minutes=40))
            rec = {
                "source_id": sid, "arrival_at": (t + timedelta(minutes=40)).isoformat(),
                "assault_at": t.isoformat(), "assault_method": r.choice(METHODS),
                "location_type": r.choice(PLACES), "location": loc,
                "location_description": self._tag(f"outside a pub near {p.address}"),
                "patient_name": p.name, "patient_dob": p.dob.isoformat(),
                "nhs_number": nhs_number(r), "patient_postcode": p.postcode,
                "notes": self._tag(f"Patient {p.name} DOB {p.dob:%d/%m/%Y}, tel {p.phone}."),
            }
        else:
            rec = {
                "source_id": sid, "report_type": r.choice(["asb", "environmental"]),
                "category": r.choice(COUNCIL_CATS), "reported_at": self.when(now).isoformat(),
                "location": loc, "reporter_name": p.name, "reporter_phone": p.phone,
                "reporter_email": p.email, "reporter_address": p.address,
                "description": self._tag(f"{p.name} reports a problem near {p.address}."),
            }
        return ward, rec

    def partner_for(self, feed: str, ward: str) -> str:
        """Which partner publishes: the council of the ward's district for council reports."""
        if feed != "council":
            return FEED_PARTNER[feed]
        return COUNCIL_BY_DISTRICT[self.areas.wards[ward].district_code]

    def stream(self, feeds: tuple[str, ...] = FEED_NAMES
               ) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """Endless (feed, partner, ward, record)."""
        while True:
            feed = self.rng.choice(feeds)
            ward, rec = self.record(feed)
            yield feed, self.partner_for(feed, ward), ward, rec


COUNCIL_BY_DISTRICT = {
    "E07000095": "broxbourne-bc", "E07000096": "dacorum-bc", "E07000098": "hertsmere-bc",
    "E07000099": "north-herts-dc", "E07000102": "three-rivers-dc", "E07000103": "watford-bc",
    "E07000240": "st-albans-dc", "E07000241": "welwyn-hatfield-bc", "E07000242": "east-herts-dc",
    "E07000243": "stevenage-bc",
}
