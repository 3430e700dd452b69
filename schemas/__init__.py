"""Contracts of the hub: the four partner feeds, the envelope and the depersonalised shared record.

JSON Schema files in ``schemas/json`` are generated from these models (``python -m schemas.export``)
and a test fails when they drift.
"""

from schemas.base import FREE_TEXT, PERSONAL, free_text_fields, personal_fields
from schemas.envelope import Envelope, RawRecord
from schemas.feeds import (
    FEEDS,
    CouncilReport,
    FeedName,
    FireIncident,
    HealthAssault,
    PoliceIncident,
)
from schemas.shared import SharedRecord

__all__ = [
    "FEEDS", "FREE_TEXT", "PERSONAL", "CouncilReport", "Envelope", "FeedName", "FireIncident",
    "HealthAssault", "PoliceIncident", "RawRecord", "SharedRecord", "free_text_fields",
    "personal_fields",
]
