"""The four partner feeds.

Categories follow the Crime and Disorder (Prescribed Information) Regulations 2007 (police and
fire), the ISTV / Cardiff Model minimum data set (emergency departments) and the councils' own ASB
and environmental reports. Police categories are police.uk's crime types, so the real street files
import without translation.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BeforeValidator, Field

from schemas.base import PERSONAL, FeedModel, free_text, personal
from schemas.location import Location

FeedName = Literal["police", "fire", "health", "council"]

_NUMBER = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


def _text_timestamp(value: Any) -> Any:
    """pydantic reads a number (or a numeric string) as Unix seconds: `occurred_at: 12345`
    became 1970-01-01T03:25:45. No partner system sends epoch numbers on purpose, so refuse."""
    if isinstance(value, int | float) or (
            isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("must be an ISO 8601 date-time with a time zone, e.g. "
                         "2026-03-01T21:15:00Z, not a number")
    return value


#: An event time: ISO 8601 text with a time zone (a time without one is ambiguous by an hour
#: half the year, so it is refused rather than read as UTC). Plausibility against the clock
#: (not in the future, not before a floor) is checked by ingest, which knows the time.
EventTime = Annotated[AwareDatetime, BeforeValidator(_text_timestamp)]

PoliceCategory = Literal[
    "anti-social-behaviour", "bicycle-theft", "burglary", "criminal-damage-arson", "drugs",
    "other-crime", "other-theft", "possession-of-weapons", "public-order", "robbery",
    "shoplifting", "theft-from-the-person", "vehicle-crime", "violent-crime",
]

FireCategory = Literal[
    "deliberate-primary-fire", "deliberate-secondary-fire", "dwelling-fire-no-smoke-alarm",
    "violence-against-staff",
]

AssaultMethod = Literal[
    "body-part", "blunt-object", "knife-or-sharp", "glass-or-bottle", "firearm", "other", "unknown",
]

AssaultLocationType = Literal[
    "public-place", "licensed-premises", "home", "workplace", "school", "transport", "other",
    "unknown",
]

CouncilCategory = Literal[
    "anti-social-behaviour", "noise", "fly-tipping", "graffiti", "abandoned-vehicle",
    "drug-litter", "criminal-damage",
]


class PoliceIncident(FeedModel):
    """A police-recorded incident (s17A: ASB and notifiable crime, with date, time and place)."""

    source_id: str = Field(min_length=1, max_length=128, description="The force's own reference.")
    category: PoliceCategory
    occurred_at: EventTime
    time_precision: Literal["minute", "month"] = Field(
        default="minute", description="police.uk files give only the month.")
    location: Location | None = Field(default=None, json_schema_extra=PERSONAL)
    district_hint: str | None = Field(
        default=None, max_length=80,
        description="District name given by the source (police.uk LSOA name), used when the "
                    "location is missing or outside the hub's boundaries.")
    victim_name: str | None = personal("Victim's full name.", max_length=200)
    victim_dob: date | None = personal("Victim's date of birth.")
    suspect_name: str | None = personal("Suspect's full name.", max_length=200)
    suspect_dob: date | None = personal("Suspect's date of birth.")
    address: str | None = personal("Address of the incident or victim.", max_length=300)
    summary: str | None = free_text("Officer's free-text summary.", max_length=4000)


class FireIncident(FeedModel):
    """A fire and rescue incident prescribed for sharing (deliberate fires, attacks on staff)."""

    source_id: str = Field(min_length=1, max_length=128)
    category: FireCategory
    property_type: Literal["dwelling", "non-residential", "vehicle", "outdoor", "refuse", "other"]
    occurred_at: EventTime
    location: Location = Field(json_schema_extra=PERSONAL)
    occupier_name: str | None = personal("Occupier's full name.", max_length=200)
    occupier_phone: str | None = personal("Occupier's telephone number.", max_length=40)
    address: str | None = personal("Address of the property.", max_length=300)
    narrative: str | None = free_text("Crew's free-text narrative.", max_length=4000)


class HealthAssault(FeedModel):
    """An emergency department assault attendance (ISTV / Cardiff Model minimum data set)."""

    source_id: str = Field(min_length=1, max_length=128)
    category: Literal["assault"] = "assault"
    arrival_at: EventTime
    assault_at: EventTime
    assault_method: AssaultMethod
    location_type: AssaultLocationType
    location_description: str | None = free_text(
        "Where the assault happened, in the patient's words (street, premises).", max_length=500)
    location: Location | None = Field(default=None, json_schema_extra=PERSONAL)
    patient_name: str | None = personal("Patient's full name.", max_length=200)
    patient_dob: date | None = personal("Patient's date of birth.")
    nhs_number: str | None = personal("Patient's NHS number.", pattern=r"^\d{3} ?\d{3} ?\d{4}$")
    patient_postcode: str | None = personal("Patient's home postcode.", max_length=10)
    notes: str | None = free_text("Clinician's free-text notes.", max_length=4000)


class CouncilReport(FeedModel):
    """A district council ASB or environmental report."""

    source_id: str = Field(min_length=1, max_length=128)
    report_type: Literal["asb", "environmental"]
    category: CouncilCategory
    reported_at: EventTime
    location: Location = Field(json_schema_extra=PERSONAL)
    reporter_name: str | None = personal("Reporter's full name.", max_length=200)
    reporter_phone: str | None = personal("Reporter's telephone number.", max_length=40)
    reporter_email: str | None = personal("Reporter's email address.", max_length=200)
    reporter_address: str | None = personal("Reporter's address.", max_length=300)
    description: str | None = free_text("The report in the reporter's words.", max_length=4000)


FEEDS: dict[str, type[FeedModel]] = {
    "police": PoliceIncident,
    "fire": FireIncident,
    "health": HealthAssault,
    "council": CouncilReport,
}

#: The feeds, in the order every listing uses.
FEED_NAMES: tuple[FeedName, ...] = get_args(FeedName)

#: The fields that carry each feed's event time, most specific first: an emergency department
#: knows the assault time only sometimes, its arrival time always. The one list every stage reads.
EVENT_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "police": ("occurred_at",), "fire": ("occurred_at",), "health": ("assault_at", "arrival_at"),
    "council": ("reported_at",),
}
#: The field each feed's hot-spot windows and the risk gate's time cells use (the first above):
#: a count must not mix assault times with arrival times, which lag by hours.
EVENT_TIME_FIELD: dict[str, str] = {feed: names[0] for feed, names in EVENT_TIME_FIELDS.items()}
