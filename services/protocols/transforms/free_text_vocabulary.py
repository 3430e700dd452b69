"""``free_text: vocabulary``: release a word only if the protocol's vocabulary lists it.

The text is normalised (``free_text_normalise``), cut at whitespace into chunks, and each chunk
into leading punctuation, a core and trailing punctuation. Then, whatever the vocabulary says:

- a core holding a digit, or letters joined by ``. / @ _`` (or any other symbol), or a letter
  outside ASCII, is replaced: ``[NUMBER]`` when it holds a digit, ``[CONTACT]`` for an e-mail or
  handle, ``[PLACE]`` for a what3words address, ``[?]`` otherwise;
- a word of the record's own names or addresses is replaced (``[NAME]`` / ``[PLACE]``);
- a capitalised word that is a name on the name list is ``[NAME]``; so is the word after a title
  ("Nurse", "Cllr", "Father", "Mrs") and a name-word written next to a name;
- a capitalised word inside a sentence is released only if it is a listed place: inside a
  sentence a capital marks a proper noun (a nickname, a shop, a street) far more often than not;
- a word before a street type ("Acacia Avenue", "oak road") or a school or college is ``[PLACE]``.

Everything else is released only if listed (``[words]`` in any case, ``[lower-case only]`` in lower
case only, ``[places]`` as written), else ``[NAME]`` if on the name list, else ``[?]``. Runs of
placeholders merge into one, so the shape of a removed name or number is not released either.
Punctuation is kept only from a small set and at most three marks at a time.

Every step is one pass over the text with constant work per character: linear in the input (see
``tests/unit/protocols/test_free_text_linear.py`` and ``bench/free_text_cost.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.protocols.transforms.free_text_normalise import normalise
from services.protocols.transforms.free_text_record import (
    CONTACT,
    NAME,
    NUMBER,
    PLACE,
    UNKNOWN,
    RecordWords,
)
from services.protocols.vocabularies import Names, Vocabulary

TITLES = frozenset((
    "mr", "mrs", "ms", "miss", "mx", "dr", "doctor", "prof", "professor", "sir", "dame", "lady",
    "lord", "nurse", "sister", "matron", "father", "fr", "mother", "brother", "rev", "revd",
    "reverend", "vicar", "pastor", "imam", "rabbi", "cllr", "councillor", "pc", "pcso", "dc",
    "ds", "di", "dci", "sgt", "sergeant", "insp", "inspector", "constable", "officer", "aunt",
    "auntie", "aunty", "uncle", "nan", "nana", "gran", "grandma", "grandad", "granddad",
    "grandpa", "cousin", "mum", "mam", "dad", "master", "madam", "captain", "capt", "coach",
    "teacher", "head", "headteacher", "mister", "missus", "mrs.", "mr.", "sen", "senior",
))
#: After a capitalised word these make it a place; after any word but a generic one, for the
#: unambiguous street types.
STREETS = frozenset(("road", "rd", "street", "st", "lane", "avenue", "ave", "crescent", "terrace",
                     "gardens", "mews", "grove", "boulevard", "cul"))
PLACE_AFTER_CAPITAL = frozenset((
    "close", "drive", "way", "place", "walk", "hill", "park", "green", "row", "rise", "square",
    "court", "parade", "estate", "school", "academy", "college", "primary", "infants", "juniors",
    "surgery", "hospital", "centre", "center", "arms", "inn", "tavern", "house", "farm",
    "common", "wood", "heath", "end", "ltd", "limited", "plc", "stores", "motors", "garage",
))
GENERIC_BEFORE_STREET = frozenset((
    "the", "a", "an", "this", "that", "main", "same", "busy", "side", "back", "private", "country",
    "slip", "dual", "ring", "one", "next", "other", "quiet", "narrow", "residential", "local",
    "nearby", "opposite", "end", "corner", "high", "his", "her", "their", "our", "my", "its",
    "which", "what", "on", "in", "at", "of", "to", "along", "down", "up", "across", "into",
))
_PLACE_MARKERS = STREETS | PLACE_AFTER_CAPITAL
_PUNCT_KEPT = frozenset(".,;:!?()'\"-")
_MAX_PUNCT = 3
_SENTENCE_END = frozenset(".!?:")
#: Lower-case-only words that open a sentence as themselves, never as a name.
_PRONOUNS = frozenset(("he",))
_PRIORITY = {NAME: 0, PLACE: 1, CONTACT: 2, NUMBER: 3, UNKNOWN: 4}


@dataclass
class Lists:
    """Everything the release consults, merged from the protocol's named lists."""

    words: frozenset[str]
    lower_only: frozenset[str]
    places: frozenset[str]
    names: Names

    @classmethod
    def of(cls, vocabularies: list[Vocabulary], names: Names) -> Lists:
        return cls(frozenset().union(*(v.words for v in vocabularies)),
                   frozenset().union(*(v.lower_only for v in vocabularies)),
                   frozenset().union(*(v.places for v in vocabularies)), names)


@dataclass
class Meter:
    """Counts the elementary steps of one release, so a test can check the work is linear."""

    steps: int = 0


@dataclass
class _Out:
    #: ("w", word) released word, ("p", label) placeholder, ("s", punct) punctuation, (" ", " ")
    items: list[tuple[str, str]] = field(default_factory=list)

    def last_word_index(self) -> int | None:
        for i in range(len(self.items) - 1, max(-1, len(self.items) - 4), -1):
            if self.items[i][0] in ("w", "p"):
                return i
        return None


def _punct(chars: str) -> str:
    return "".join(c for c in chars if c in _PUNCT_KEPT)[:_MAX_PUNCT]


def _split_chunk(chunk: str) -> tuple[str, str, str]:
    start, end = 0, len(chunk)
    while start < end and not chunk[start].isalnum():
        start += 1
    while end > start and not chunk[end - 1].isalnum():
        end -= 1
    return chunk[:start], chunk[start:end], chunk[end:]


def _is_w3w(core: str) -> bool:
    parts = core.split(".")
    return len(parts) == 3 and all(p.isalpha() for p in parts)


def _joined_label(lead: str, core: str) -> str:
    if "@" in core or "@" in lead:
        return CONTACT
    if _DIGIT.search(core) or any(c.isdigit() for c in core):
        return NUMBER
    if _is_w3w(core) or lead.endswith("///"):
        return PLACE
    return UNKNOWN


_PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
_JOINERS = re.compile(r"[./@_\\]")
_DIGIT = re.compile(r"[0-9]")


def _plain_word(part: str) -> bool:
    return _PLAIN_WORD.fullmatch(part) is not None


class Release:
    """One text through one set of lists; ``run`` returns the released text."""

    def __init__(self, lists: Lists, record: RecordWords, meter: Meter | None = None) -> None:
        self.lists = lists
        self.record = record
        self.meter = meter or Meter()

    def run(self, text: str) -> str:
        out = _Out()
        sentence_start = True
        after_title = False
        for chunk in normalise(text).split():
            self.meter.steps += len(chunk) + 1
            lead, core, trail = _split_chunk(chunk)
            if out.items:
                out.items.append((" ", " "))
            if lead:
                out.items.append(("s", _punct(lead)))
                if "." in lead or "!" in lead or "?" in lead:
                    sentence_start = True
            if core:
                after_title = self._core(out, lead, core, sentence_start, after_title)
                sentence_start = False
            if trail:
                out.items.append(("s", _punct(trail)))
                if any(c in _SENTENCE_END for c in trail):
                    # "Mr." ends no sentence: the title's own full stop.
                    sentence_start = not after_title
        self._name_before_name(out)
        return _render(out.items, self.meter)

    def _name_before_name(self, out: _Out) -> None:
        """A released forename, or capitalised name-word, just before a [NAME] is part of it
        ("will [NAME]"); "friend [NAME]" keeps its everyday surname-word."""
        names = self.lists.names
        following_name = False
        for i in range(len(out.items) - 1, -1, -1):
            self.meter.steps += 1
            kind, text = out.items[i]
            if kind == "p":
                following_name = text == NAME
            elif kind == "w":
                lo = text.lower()
                if following_name and lo not in TITLES and (
                        lo in names.forenames or (not text.islower() and lo in names.all)):
                    out.items[i] = ("p", NAME)
                else:
                    following_name = False
            elif kind == "s" and text not in ("-", "'"):
                following_name = False

    def _core(self, out: _Out, lead: str, core: str, sentence_start: bool,
              after_title: bool) -> bool:
        if _JOINERS.search(core) or "@" in lead:
            out.items.append(("p", _joined_label(lead, core)))
            return False
        title = False
        for i, part in enumerate(core.split("-")):
            if i:
                out.items.append(("s", "-"))
            if not part:
                continue
            if not _plain_word(part):
                out.items.append(("p", NUMBER if _DIGIT.search(part) else UNKNOWN))
                continue
            label = self._word(out, part, sentence_start and i == 0, after_title)
            title = part.lower() in TITLES
            # "Oakfield Primary School", "oak road", "Oakfield Way": the words before say which
            # place.
            marker = part.lower() in _PLACE_MARKERS and not after_title and (
                label in (None, UNKNOWN) or part.lower() in self.lists.lower_only)
            if marker and self._place_before(out, part.lower()) and label is not None:
                label = PLACE
            out.items.append(("w", part) if label is None else ("p", label))
        return title

    def _word(self, out: _Out, word: str, sentence_start: bool, after_title: bool) -> str | None:
        """None to release ``word``; else its placeholder label."""
        lo = word.lower()
        base = lo[:-2] if lo.endswith("'s") else lo
        names, lists = self.lists.names, self.lists
        lower = word.islower()
        caps = word.isupper() and len(word) > 1
        titled = not lower and not caps
        prev = out.last_word_index()
        after_name = prev is not None and out.items[prev] == ("p", NAME)
        in_names = lo in names.all or base in names.all
        if lo in TITLES and (lo in lists.words or len(lo) <= 5):
            return None  # a title alone names no one; the word after it is the name
        if after_title and lo not in TITLES and (titled or caps or in_names
                                                 or lo not in lists.words):
            return NAME
        if lower and lo in lists.lower_only and not after_name:
            return None
        own = self.record.label(lo) or self.record.label(base)
        if own is not None:
            return own
        if lo in lists.places or base in lists.places:
            return None
        if after_name and in_names:
            return NAME
        if lo in lists.lower_only or base in lists.lower_only:
            # Written in lower case it was released above; capitalised it is a name.
            return None if sentence_start and lo in _PRONOUNS else NAME
        if lo not in lists.words and base not in lists.words:
            return NAME if in_names else UNKNOWN
        if titled and not sentence_start and lo != "i" and not lo.startswith("i'"):
            return NAME if in_names else UNKNOWN
        if (titled or caps) and lo in names.common:
            return NAME
        return None

    def _place_before(self, out: _Out, street: str) -> bool:
        """Make the word before a street type (or school ...) a place; True if it was one."""
        prev = out.last_word_index()
        if prev is None:
            return False
        kind, word = out.items[prev]
        if kind == "p":
            if word in (UNKNOWN, NUMBER, PLACE):
                out.items[prev] = ("p", PLACE)
                return True
            return False
        capital = word[:1].isupper()
        if capital or (street in STREETS and word.lower() not in GENERIC_BEFORE_STREET):
            out.items[prev] = ("p", PLACE)
            return True
        return False


def _render(items: list[tuple[str, str]], meter: Meter) -> str:
    """Join the pieces; a run of placeholders with only spaces, commas, hyphens or apostrophes
    between them becomes one placeholder, the most specific of the run. A full stop ends a run:
    it may end a sentence."""
    parts: list[str] = []
    run: str | None = None  # label of the open placeholder run
    pending: list[str] = []  # separators seen since the run's last placeholder
    for kind, text in items:
        meter.steps += 1
        if kind == "p":
            run = min(run, text, key=_PRIORITY.__getitem__) if run is not None else text
            pending = []
            continue
        if run is not None and (kind == " " or (kind == "s" and set(text) <= set(",-'"))):
            pending.append(text)
            continue
        if run is not None:
            parts.append(f"[{run}]")
            parts.extend(pending)
            run, pending = None, []
        parts.append(text)
    if run is not None:
        parts.append(f"[{run}]")
        parts.extend(pending)
    return "".join(parts).strip()
