"""The record's own personal values as a set of words: the record-aware first pass of
``free_text: vocabulary``.

A vocabulary decides what may be released; this pass only decides how a removed word is *typed*
and catches the record's own words that happen to be everyday words ("Oak" of "4 Oak Road",
"Brook" of "Amelia Brook"). Each personal field's value is cut into letter runs once, so the
cost is linear in the record and the check per text word is one set lookup: there is no
per-record pattern and no term matching across word boundaries to blow up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from services.protocols.transforms.free_text_normalise import normalise

NAME, PLACE, CONTACT, NUMBER, UNKNOWN = "NAME", "PLACE", "CONTACT", "NUMBER", "?"

_LETTERS = re.compile(r"[A-Za-z]+")
#: Words of an address that say what kind of place it is, not which: left to the vocabulary.
ADDRESS_GENERIC = frozenset((
    "flat", "apartment", "apt", "house", "road", "rd", "street", "st", "lane", "ln", "avenue",
    "ave", "close", "drive", "way", "crescent", "court", "place", "gardens", "grove", "terrace",
    "hill", "park", "square", "walk", "mews", "row", "view", "rise", "parade", "green", "the",
    "of", "and", "upper", "lower", "north", "south", "east", "west", "new", "old", "high",
))


@dataclass(frozen=True)
class RecordWords:
    """Lower-case word -> placeholder label, for the record's own personal values."""

    labels: Mapping[str, str]

    def label(self, word: str) -> str | None:
        return self.labels.get(word)


def _kind(field: str) -> str | None:
    f = field.casefold()
    if "name" in f:
        return NAME
    if "address" in f or "postcode" in f:
        return PLACE
    if "email" in f:
        return CONTACT
    return None


def record_words(record: Mapping[str, Any], personal_fields: Iterable[str],
                 skip: Iterable[str] = (), places: frozenset[str] = frozenset()) -> RecordWords:
    """Words of the record's names, addresses and e-mail addresses.

    ``skip``: fields not to read (free-text fields, whose every word would otherwise be removed
    from each other). ``places``: coarse place names the protocol's vocabulary releases (a town
    in an address is no more precise than the district the record already carries).
    """
    skipped = set(skip)
    labels: dict[str, str] = {}
    for field in sorted(set(personal_fields) - skipped):
        value = record.get(field)
        kind = _kind(field)
        if kind is None or not isinstance(value, str):
            continue
        for m in _LETTERS.finditer(normalise(value)):
            word = m[0].lower()
            if len(word) < 2 or (kind == PLACE and (word in ADDRESS_GENERIC or word in places)):
                continue
            # A word that is both a name and a place in this record is typed as a name.
            if labels.get(word) != NAME:
                labels[word] = kind
    return RecordWords(labels)
