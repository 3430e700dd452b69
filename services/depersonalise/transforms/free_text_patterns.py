"""Pure functions that find personal data in free text and replace it with typed placeholders.

Two sources of matches, merged before anything is replaced:

1. The record's own personal values (``record_terms``): the people, addresses, phones, emails,
   NHS numbers and dates of birth of *this* record, matched whatever their case, spacing or date
   format. This is what catches a victim's name in the officer's summary; a generic name detector
   cannot know that "Rose" or "Will" is a name here.
2. Generic UK patterns (``PATTERNS``): NHS numbers (check digit verified), NI numbers, phones,
   emails, postcodes, vehicle registrations, dates, house-number + street addresses, titled names
   ("Mrs Okafor"), coordinate pairs and reference-like tokens (letters and digits mixed, six or
   more: crime numbers, case references).

Matches are collected on the original text and overlapping ones are merged into one placeholder,
so a partial match can never leave half an identifier behind, and a placeholder already written is
never matched again. The bias is deliberate: a false positive costs a word, a false negative puts
personal data in front of a tasking group.

Known limits: names of people who are not in the record and are written without a title, nicknames
and misspellings are not found; use ``mode: drop`` where that matters.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

NAME = "NAME"
NHS_NUMBER = "NHS_NUMBER"
NI_NUMBER = "NI_NUMBER"
PHONE = "PHONE"
EMAIL = "EMAIL"
POSTCODE = "POSTCODE"
VRM = "VRM"
DATE = "DATE"
ADDRESS = "ADDRESS"
LOCATION = "LOCATION"
PERSONAL = "PERSONAL"


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    label: str


# --- generic patterns ---------------------------------------------------------------------------

_MONTHS = [
    "jan(?:uary)?", "feb(?:ruary)?", "mar(?:ch)?", "apr(?:il)?", "may", "june?", "july?",
    "aug(?:ust)?", "sep(?:t(?:ember)?)?", "oct(?:ober)?", "nov(?:ember)?", "dec(?:ember)?",
]
_MONTH = "(?:" + "|".join(_MONTHS) + r")\.?"
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])(?:st|nd|rd|th)?"
_STREET_TYPES = (
    "street|st|road|rd|avenue|ave|lane|ln|close|cl|drive|dr|way|crescent|cres|court|ct|place|pl|"
    "gardens|gdns|grove|gr|terrace|terr|hill|park|square|sq|walk|mews|row|view|rise|parade|green|"
    "vale|wharf|yard|end|gate|croft|meadow|meadows|fields"
)
_TITLES = r"mrs|mr|ms|miss|mx|dr|prof|sir|dame|pcso|pc|dc|ds|sgt|insp"
_CAP_WORD = r"[A-Z][A-Za-z'’\-]+"

# Lenient on purpose: prefix letters are not checked against HMRC's allocation rules so that
# test-style and mistyped NI numbers are still removed.
_NI = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]?(?![A-Za-z0-9])", re.I)
_EMAIL = re.compile(r"[\w.%+'\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
# +44 / 0044 / 0, then 9 or 10 more digits with spaces, dashes, dots or brackets between them.
_PHONE = re.compile(
    r"(?<![\d+])(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(?0)(?:[\s\-.)]{0,2}\d){9,10}(?!\d)")
_NHS = re.compile(r"(?<!\d)(\d{3})[ \-]?(\d{3})[ \-]?(\d{4})(?!\d)")
_POSTCODE = re.compile(
    r"(?<![A-Za-z0-9])(?:[A-Z]{1,2}[0-9][A-Z0-9]?|GIR)\s*[0-9][A-Z]{2}(?![A-Za-z0-9])", re.I)
_VRM_CURRENT = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}\s?[A-Z]{3}(?![A-Za-z0-9])", re.I)
# Older formats are matched in capitals only: in lower case they look like "a1 the" or "and 12b".
_VRM_PREFIX = re.compile(r"(?<![A-Za-z0-9])[A-Z][0-9]{1,3}\s?[A-Z]{3}(?![A-Za-z0-9])")
_VRM_SUFFIX = re.compile(r"(?<![A-Za-z0-9])[A-Z]{3}\s?[0-9]{1,3}[A-Z](?![A-Za-z0-9])")
_DATE_NUMERIC = re.compile(r"(?<![\d/.\-])\d{1,2}[/\-.]\d{1,2}[/\-.](?:\d{4}|\d{2})(?![\d/\-])")
_DATE_ISO = re.compile(r"(?<![\d/\-])\d{4}[/\-]\d{1,2}[/\-]\d{1,2}(?![\d/\-])")
_DATE_DAY_MONTH = re.compile(
    rf"(?<![\w]){_DAY}(?:\s+of)?\s+{_MONTH}(?:,?\s+(?:\d{{4}}|'\d{{2}}))?(?!\w)", re.I)
_DATE_MONTH_DAY = re.compile(rf"(?<![\w]){_MONTH}\s+{_DAY}(?:,?\s+\d{{4}})?(?!\w)", re.I)
_ADDRESS = re.compile(
    rf"(?<![\w])(?:(?i:flat)\s+\d+[A-Za-z]?,?\s+)?\d{{1,4}}[A-Za-z]?,?\s+(?:{_CAP_WORD}\s+){{1,3}}"
    rf"(?i:{_STREET_TYPES})\b")
_TITLED_NAME = re.compile(
    rf"(?<![A-Za-z])(?i:{_TITLES})\.?\s+{_CAP_WORD}(?:\s+{_CAP_WORD})?")
_COORDS = re.compile(r"(?<![\d.])-?\d{1,2}\.\d{3,}\s*,\s*-?\d{1,3}\.\d{3,}(?![\d.])")


def nhs_check_digit_ok(digits: str) -> bool:
    """NHS number modulus 11: weights 10..2 on the first nine digits; 10 means invalid."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def _regex_spans(pattern: re.Pattern[str], label: str, text: str) -> Iterator[Span]:
    for m in pattern.finditer(text):
        yield Span(m.start(), m.end(), label)


def _nhs_spans(text: str) -> Iterator[Span]:
    for m in _NHS.finditer(text):
        if nhs_check_digit_ok("".join(m.groups())):
            yield Span(m.start(), m.end(), NHS_NUMBER)


#: A reference-like token: six or more letters and digits, both present (crime and custody
#: numbers, case and account references, hospital numbers). Such a token identifies a person as
#: surely as a name does and the hub cannot know whose it is, so it goes.
REFERENCE = "REFERENCE"
_REFERENCE = re.compile(
    r"(?<![A-Za-z0-9])(?=[A-Za-z0-9/-]*[0-9])(?=[A-Za-z0-9/-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9/-]{4,}"
    r"[A-Za-z0-9](?![A-Za-z0-9])")

_GENERIC: tuple[tuple[re.Pattern[str], str], ...] = (
    (_REFERENCE, REFERENCE),
    (_EMAIL, EMAIL), (_PHONE, PHONE), (_NI, NI_NUMBER), (_POSTCODE, POSTCODE),
    (_VRM_CURRENT, VRM), (_VRM_PREFIX, VRM), (_VRM_SUFFIX, VRM),
    (_DATE_NUMERIC, DATE), (_DATE_ISO, DATE), (_DATE_DAY_MONTH, DATE), (_DATE_MONTH_DAY, DATE),
    (_ADDRESS, ADDRESS), (_TITLED_NAME, NAME), (_COORDS, LOCATION),
)


# Cheap tests that rule patterns out before they scan the text: every pattern but the email and
# titled-name ones needs a digit, the email one an @, and the date ones with a month name that
# name's first three letters. The month test runs on the case-folded text (see fold_case), which
# folds at least every pair of characters IGNORECASE equates, so it never rules out a match.
_ANY_DIGIT = re.compile(r"\d")
_MONTH_PREFIXES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                   "dec")
_NEEDS_MONTH = frozenset((_DATE_DAY_MONTH, _DATE_MONTH_DAY))


def _has_month(text: str) -> bool:
    folded = fold_case(text)
    return any(m in folded for m in _MONTH_PREFIXES)


def pattern_spans(text: str) -> list[Span]:
    """Spans of generic personal-data patterns in ``text``."""
    if not _ANY_DIGIT.search(text):
        spans = list(_regex_spans(_EMAIL, EMAIL, text)) if "@" in text else []
        spans.extend(_regex_spans(_TITLED_NAME, NAME, text))
        return spans
    spans = list(_nhs_spans(text))
    has_month = _has_month(text)
    for pattern, label in _GENERIC:
        if (pattern is _EMAIL and "@" not in text) or (
                not has_month and pattern in _NEEDS_MONTH):
            continue
        spans.extend(_regex_spans(pattern, label, text))
    return spans


# --- the record's own values --------------------------------------------------------------------
#
# Compiling a regex costs 0.1-1 ms here, and a record's own values are new with every record, so
# nothing below compiles per record: a record's values become small token lists (terms) matched
# with str.find on a case-folded copy of the text, and its dates are compared, as numbers, with
# the dates a few static patterns find. Each term matches what the per-record regex it replaces
# (``(?<!\w)`` + value + ``(?!\w)``, case-insensitive) matched, or more: every start position is
# tried, not only those left over by an earlier match, and the longest possible end is taken.

_NAME_STOPWORDS = frozenset((
    "of", "to", "in", "at", "on", "by", "an", "as", "is", "it", "be", "he", "we", "me", "my", "no",
    "so", "up", "or", "do", "go", "us", "am", "if", "mr", "mrs", "ms", "miss", "mx", "dr", "prof",
    "sir", "dame",
))
_MIN_TERM = 3

# Token kinds of a term: a literal run, an optional apostrophe (' or ’), a run of one or more
# word separators ([\s,.]+ between the words of a name or address), optional whitespace (\s*
# inside a postcode).
_LIT, _APOS, _SEP, _WS = range(4)
Token = tuple[int, str]

# Python's IGNORECASE also equates a few characters whose lower cases differ (s and ſ, i and ı,
# µ and μ ...). Folding both to one representative keeps every match the old regexes made.
_CASE_CLASSES: dict[str, str] = {}
for _lo, _others in getattr(importlib.import_module("re._casefix"), "_EXTRA_CASES", {}).items():
    _rep = min(chr(_lo), *map(chr, _others))
    for _c in (chr(_lo), *map(chr, _others)):
        _CASE_CLASSES[_c] = min(_rep, _CASE_CLASSES.get(_c, _rep))


def _fold_char(c: str) -> str:
    """One character to one character: lower case, IGNORECASE class, accents stripped.

    Always exactly one character, so positions in the folded text are positions in the text.
    """
    low = "i" if c == "\u0130" else c.lower()  # İ: the only char whose full lower case is longer
    if len(low) != 1:
        low = c
    low = _CASE_CLASSES.get(low, low)
    bare = "".join(x for x in unicodedata.normalize("NFKD", low) if not unicodedata.combining(x))
    out = bare.lower() if len(bare) == 1 else low
    out = out if len(out) == 1 else low
    return "'" if out == "’" else _CASE_CLASSES.get(out, out)


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first sight of each character."""

    def __missing__(self, key: int) -> str:
        value = self[key] = _fold_char(chr(key))
        return value


_FOLD = _FoldTable()


def fold_case(text: str) -> str:
    """``text`` folded for matching, the same length as ``text``."""
    return text.translate(_FOLD)


def _is_word(c: str) -> bool:
    # Python's \w: alphanumeric in the Unicode sense, or the underscore.
    return c.isalnum() or c == "_"


@dataclass(frozen=True)
class Term:
    """One personal value of the record as a token pattern; see ``term_spans``."""

    label: str
    tokens: tuple[Token, ...]


@dataclass(frozen=True)
class NumberTerm:
    """A phone or NHS number: its digits, each gap up to two of space - . ( ) and, for a UK
    number, the trunk 0 or +44 / 0044 (optionally "(0)") in front."""

    label: str
    digits: str
    uk: bool


@dataclass(frozen=True)
class DateTerm:
    label: str
    value: date


AnyTerm = Term | NumberTerm | DateTerm


def _fold(text: str) -> str:
    """Accents stripped: a record's "Zoë" must also catch "Zoe" in the text."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_APOSTROPHES = re.compile("['’]")


def _append_literal(out: list[Token], text: str) -> None:
    for i, chunk in enumerate(_APOSTROPHES.split(text)):
        if i:
            out.append((_APOS, ""))
        if chunk:
            out.append((_LIT, fold_case(chunk)))


def _literal(text: str) -> tuple[Token, ...]:
    """``text`` with any run of spaces or commas between its words matched loosely ([\\s,.]+),
    and each ' optional and matching ' or ’."""
    out: list[Token] = []
    for i, word in enumerate(w for w in re.split(r"[\s,]+", text.strip()) if w):
        if i:
            out.append((_SEP, ""))
        _append_literal(out, word)
    return tuple(out)


def _exact(text: str) -> tuple[Token, ...]:
    """``text`` as it is, but for case (an email address)."""
    return ((_LIT, fold_case(text)),) if text else ()


def _joined(parts: Iterable[tuple[Token, ...]]) -> tuple[Token, ...]:
    out: list[Token] = []
    for i, p in enumerate(parts):
        if i:
            out.append((_SEP, ""))
        out.extend(p)
    return tuple(out)


@lru_cache(maxsize=16_384)
def name_terms(name: str) -> list[Term]:
    """Full name, reversed ("Smith, John"), and each name token on its own."""
    out: list[Term] = []
    for variant in {name, _fold(name)}:
        tokens = [t.strip(".") for t in re.split(r"[\s,]+", variant) if t.strip(".")]
        tokens = [t for t in tokens if t.casefold() not in _NAME_STOPWORDS or len(tokens) == 1]
        if not tokens:
            continue
        out.append(Term(NAME, _joined(_literal(t) for t in tokens)))
        if len(tokens) > 1:
            rev = [tokens[-1], *tokens[:-1]]
            out.append(Term(NAME, _joined(_literal(t) for t in rev)))
        parts = set(tokens)
        for t in tokens:
            parts.update(p for p in t.split("-") if p)
        for part in parts:
            # Two-letter surnames (Wu, Ng, Li) are real; two-letter English words are not names.
            short_ok = len(part) == 2 and part.casefold() not in _NAME_STOPWORDS
            if len(part) >= _MIN_TERM or short_ok:
                out.append(Term(NAME, _literal(part)))
    return list(dict.fromkeys(out))


_HOUSE_NUMBER = re.compile(r"^(?:flat\s+)?\d+[a-z]?\s+", re.I)
_THREE_LETTERS = re.compile(r"[A-Za-z]{3}")


@lru_cache(maxsize=16_384)
def address_terms(address: str) -> list[Term]:
    """The whole address, each comma-separated part, and each part without its house number."""
    out = [Term(ADDRESS, _literal(address))]
    for part in (p.strip() for p in address.split(",")):
        candidates = {part, _HOUSE_NUMBER.sub("", part)}
        for c in candidates:
            if len(c) < 4 or not _THREE_LETTERS.search(c):
                continue
            label = POSTCODE if _POSTCODE.fullmatch(c) else ADDRESS
            out.append(Term(label, _literal(c)))
    return out


_NOT_DIGIT_OR_PLUS = re.compile(r"[^\d+]")
_NOT_DIGIT = re.compile(r"\D")


def number_terms(value: str, label: str) -> list[AnyTerm]:
    """A phone or NHS number, whatever the spacing; a UK phone also in +44 form."""
    compact = _NOT_DIGIT_OR_PLUS.sub("", value)
    if len(compact.lstrip("+")) < 6:
        return [Term(label, _literal(value))] if len(value.strip()) >= _MIN_TERM else []
    for prefix in ("+44", "0044"):
        if compact.startswith(prefix):
            # "+44 (0)1234 ..." carries the trunk zero already.
            compact = "0" + compact[len(prefix):].lstrip("0")
    digits = _NOT_DIGIT.sub("", compact)
    if digits.startswith("0"):
        return [NumberTerm(label, digits[1:], uk=True)]
    return [NumberTerm(label, digits, uk=False)]


def email_terms(email: str) -> list[Term]:
    out = [Term(EMAIL, _exact(email.strip()))]
    local = email.split("@", 1)[0].strip()
    if len(local) >= 4:
        out.append(Term(EMAIL, _exact(local)))
    return out


def date_terms(d: date) -> list[DateTerm]:
    """The date in the formats people write: 01/02/1990, 1 Feb 1990, 1990-02-01, Feb 1990 ...

    See ``date_spans`` for the formats."""
    return [DateTerm(DATE, d)]


_POSTCODE_PARTS = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})")
_WHITESPACE = re.compile(r"\s+")


def postcode_terms(postcode: str) -> list[Term]:
    compact = _WHITESPACE.sub("", postcode).upper()
    if m := _POSTCODE_PARTS.fullmatch(compact):
        return [Term(POSTCODE, ((_LIT, fold_case(m[1])), (_WS, ""), (_LIT, fold_case(m[2]))))]
    return []


_PHONE_SHAPE = re.compile(r"[\d\s\-+().]{6,}")


def field_kind(name: str, value: Any) -> str | None:
    """What a personal field holds, from its value's type, then its name, then its shape."""
    if isinstance(value, Mapping) or hasattr(value, "lat"):
        return LOCATION
    if isinstance(value, (date, datetime)):
        return DATE
    if (kind := _kind_by_name(name)) is not None:
        return kind
    text = str(value)
    if "@" in text and _EMAIL.fullmatch(text.strip()):
        return EMAIL
    if _PHONE_SHAPE.fullmatch(text.strip()):
        return PHONE
    return None


@lru_cache(maxsize=1024)
def _kind_by_name(name: str) -> str | None:
    n = name.casefold()
    for needle, kind in (("email", EMAIL), ("phone", PHONE), ("mobile", PHONE), ("nhs", NHS_NUMBER),
                         ("postcode", POSTCODE), ("dob", DATE), ("birth", DATE),
                         ("address", ADDRESS), ("name", NAME)):
        if needle in n:
            return kind
    return None


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def terms_for(name: str, value: Any, *, is_target: bool) -> list[AnyTerm]:
    kind = field_kind(name, value)
    if kind == LOCATION:
        return []  # coordinates in text are caught by the generic pattern
    if kind == DATE:
        d = _parse_date(value)
        return [*date_terms(d)] if d else []
    text = str(value).strip()
    if len(text) < 2:
        return []
    if kind == NAME:
        return [*name_terms(text)]
    if kind == ADDRESS:
        return [*address_terms(text)]
    if kind in (PHONE, NHS_NUMBER):
        return number_terms(text, kind)
    if kind == EMAIL:
        return [*email_terms(text)]
    if kind == POSTCODE:
        return [*(postcode_terms(text) or [Term(POSTCODE, _literal(text))])]
    # Another free-text field: its whole value may be quoted here. Not the field being scrubbed,
    # whose whole value would otherwise replace itself.
    if is_target or len(text) < 4:
        return []
    return [Term(PERSONAL, _literal(text))]


def record_terms(record: Mapping[str, Any], personal_fields: Iterable[str],
                 target_field: str | None = None) -> list[AnyTerm]:
    """Terms for every personal value held in ``record``."""
    out: list[AnyTerm] = []
    for name in sorted(personal_fields):
        value = record.get(name)
        if value is None or value == "":
            continue
        out.extend(terms_for(name, value, is_target=name == target_field))
    return list(dict.fromkeys(out))  # an address part can equal the whole address


# The separators of the regexes these terms replace, so \s means exactly what it meant there.
# Both can match nothing, so match() always answers.
_SEP_RUN = re.compile(r"[\s,.]*")
_WS_RUN = re.compile(r"\s*")


def _term_end(term: Term, text: str, folded: str, start: int) -> int | None:
    """The furthest end of ``term`` matched at ``start`` and followed by no word character.

    Follows every way through the term at once (a set of positions), so an apostrophe taken or
    not, or a separator run cut short, cannot hide a longer match.
    """
    n = len(text)
    at = {start}
    for kind, lit in term.tokens:
        nxt: set[int] = set()
        for p in at:
            if kind == _LIT:
                if folded.startswith(lit, p):
                    nxt.add(p + len(lit))
            elif kind == _APOS:
                nxt.add(p)
                if p < n and folded[p] == "'":
                    nxt.add(p + 1)
            elif kind == _SEP:
                nxt.update(range(p + 1, _SEP_RUN.match(text, p).end() + 1))  # type: ignore[union-attr]
            else:
                nxt.update(range(p, _WS_RUN.match(text, p).end() + 1))  # type: ignore[union-attr]
        if not nxt:
            return None
        at = nxt
    ends = [e for e in at if e >= n or not _is_word(text[e])]
    return max(ends) if ends else None


def _word_term_spans(term: Term, text: str, folded: str) -> Iterator[Span]:
    if not term.tokens:
        return
    first_kind, first = term.tokens[0]
    if first_kind == _LIT and len(term.tokens) == 1:
        # One literal (most name parts, emails): nothing to choose between, no set to follow.
        n, size = len(text), len(first)
        for p in _find_all(folded, first):
            end = p + size
            if (not p or not _is_word(text[p - 1])) and (end >= n or not _is_word(text[end])):
                yield Span(p, end, term.label)
        return
    if first_kind == _LIT:
        starts: Iterable[int] = _find_all(folded, first)
    else:
        starts = range(len(text) + 1)
    for p in starts:
        if p and _is_word(text[p - 1]):
            continue
        found = _term_end(term, text, folded, p)
        if found is not None:
            yield Span(p, found, term.label)


def _find_all(haystack: str, needle: str) -> Iterator[int]:
    i = haystack.find(needle)
    while i != -1:
        yield i
        i = haystack.find(needle, i + 1)


_DIGIT_RUN = re.compile(r"\d+")
# What may stand before a UK number's first digit after the trunk 0: the trunk 0 itself (maybe
# after a bracket) or the country code, maybe with "(0)", then up to two separators.
_UK_LEAD = re.compile(r"(?<!\d)(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(?0)[\s\-.()]{0,2}")
_UK_LEAD_MAX = 12  # "0044 (0) " + two separators
# A UK number of zeros only ("+44 (0)0000") leaves no digits after the trunk 0: the lead alone.
_UK_LEAD_ALONE = re.compile(_UK_LEAD.pattern + r"(?!\d)")
_DIGIT_GAP = frozenset(" -.()")


def _digit_skeleton(text: str) -> tuple[str, list[int]]:
    """Every decimal digit of ``text`` in order, and where each one is."""
    digits: list[str] = []
    where: list[int] = []
    for m in _DIGIT_RUN.finditer(text):
        digits.append(m[0])
        where.extend(range(m.start(), m.end()))
    return "".join(digits), where


def _gap_ok(text: str, a: int, b: int) -> bool:
    gap = text[a + 1:b]
    return len(gap) <= 2 and all(c in _DIGIT_GAP or c.isspace() for c in gap)


def _number_spans(term: NumberTerm, text: str, skeleton: tuple[str, list[int]]) -> Iterator[Span]:
    digits, where = skeleton
    size = len(term.digits)
    if not size:
        if term.uk:
            yield from _regex_spans(_UK_LEAD_ALONE, term.label, text)
        return
    for i in _find_all(digits, term.digits):
        last = i + size - 1
        end = where[last] + 1
        if end < len(text) and text[end].isdecimal():
            continue
        if not all(_gap_ok(text, where[k], where[k + 1]) for k in range(i, last)):
            continue
        first = where[i]
        if not term.uk:
            if first == 0 or not text[first - 1].isdecimal():
                yield Span(first, end, term.label)
            continue
        for s in range(max(0, first - _UK_LEAD_MAX), first):
            if _UK_LEAD.fullmatch(text, s, first):
                yield Span(s, end, term.label)
                break


# Dates are found in every form the record-aware scrubber knows, whatever their value, by a few
# static patterns; each is a lookahead so that every start position is tried (a match cannot
# swallow the start of the next). The parts are then compared with the record's dates as numbers.
_MONTH_GROUPS = "|".join(f"(?P<m{i}>{m})" for i, m in enumerate(_MONTHS, 1))
_YEAR_PART = r"(?P<y>'?\d+)"
_DC_NUMERIC = re.compile(
    r"(?<!\w)(?=(?P<all>(?P<a>\d+)\s*[/\-.]\s*(?P<b>\d+)\s*[/\-.]\s*(?P<c>'?\d+))(?!\w))")
_DC_DAY_MONTH = re.compile(
    rf"(?<!\w)(?=(?P<all>(?P<d>\d+)(?:st|nd|rd|th)?(?:\s+of)?\s+(?:{_MONTH_GROUPS})\.?,?\s+"
    rf"{_YEAR_PART})(?!\w))", re.I)
_DC_MONTH_DAY = re.compile(
    rf"(?<!\w)(?=(?P<all>(?:{_MONTH_GROUPS})\.?\s+(?P<d>\d+)(?:st|nd|rd|th)?,?\s+{_YEAR_PART})"
    rf"(?!\w))", re.I)
_DC_MONTH_YEAR = re.compile(
    rf"(?<!\w)(?=(?P<all>(?:{_MONTH_GROUPS})\.?,?\s+(?P<y>\d+))(?!\w))", re.I)
_DC_COMPACT = re.compile(r"(?<!\w)\d{8}(?!\w)")


def _num(text: str) -> int:
    """A date part as a number; -1 when it is too long to be one (no parse of huge runs)."""
    text = text.lstrip("'")
    return int(text) if 0 < len(text) <= 4 else -1


def _year_ok(part: str, d: date, *, short: bool = True) -> bool:
    digits = part.lstrip("'")
    if len(digits) == 4:
        return int(digits) == d.year
    return short and len(digits) == 2 and int(digits) == d.year % 100


def _month(m: re.Match[str]) -> int:
    return next(i for i in range(1, 13) if m.group(f"m{i}") is not None)


def date_spans(text: str, dates: Iterable[date]) -> list[Span]:
    """Where any of ``dates`` is written in ``text`` in a form people use.

    Forms: day/month/year and month/day/year (separators / - . with spaces allowed, year in four
    digits or two, optionally after '), year/month/day, "1st (of) Feb(ruary)(.)(,) 1990|'90",
    "Feb 1st(,) 1990", "Feb(,) 1990", and 8-digit DDMMYYYY or YYYYMMDD. Leading zeros are
    optional everywhere.
    """
    wanted = set(dates)
    if not wanted or not _ANY_DIGIT.search(text):
        return []
    spans: list[Span] = []
    for m in _DC_NUMERIC.finditer(text):
        a, b, c = _num(m["a"]), _num(m["b"]), _num(m["c"])
        for d in wanted:
            if ((a == d.day and b == d.month and _year_ok(m["c"], d))
                    or (a == d.month and b == d.day and _year_ok(m["c"], d))
                    or (len(m["a"]) == 4 and a == d.year and b == d.month and c == d.day)):
                spans.append(Span(m.start("all"), m.end("all"), DATE))
                break
    has_month = _has_month(text)
    for pattern in (_DC_DAY_MONTH, _DC_MONTH_DAY) if has_month else ():
        for m in pattern.finditer(text):
            day, month = _num(m["d"]), _month(m)
            if any(day == d.day and month == d.month and _year_ok(m["y"], d) for d in wanted):
                spans.append(Span(m.start("all"), m.end("all"), DATE))
    for m in _DC_MONTH_YEAR.finditer(text) if has_month else ():
        month = _month(m)
        if any(month == d.month and _year_ok(m["y"], d, short=False) for d in wanted):
            spans.append(Span(m.start("all"), m.end("all"), DATE))
    compact = {f"{d.day:02d}{d.month:02d}{d.year:04d}" for d in wanted}
    compact |= {f"{d.year:04d}{d.month:02d}{d.day:02d}" for d in wanted}
    spans.extend(Span(m.start(), m.end(), DATE) for m in _DC_COMPACT.finditer(text)
                 if m[0] in compact)
    return spans


def term_spans(text: str, terms: Iterable[AnyTerm]) -> list[Span]:
    """Where each of ``terms`` occurs in ``text``."""
    terms = list(terms)
    spans = date_spans(text, [t.value for t in terms if isinstance(t, DateTerm)])
    folded = fold_case(text)
    skeleton: tuple[str, list[int]] | None = None
    for t in terms:
        if isinstance(t, Term):
            spans.extend(_word_term_spans(t, text, folded))
        elif isinstance(t, NumberTerm):
            skeleton = skeleton or _digit_skeleton(text)
            spans.extend(_number_spans(t, text, skeleton))
    return spans


# --- replacing ----------------------------------------------------------------------------------


_span_order = attrgetter("start", "end", "label")


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans become one, labelled after the longest of them."""
    merged: list[Span] = []
    longest: list[int] = []
    # The same order as sorting the dataclasses, without their slow generated comparisons.
    for s in sorted(spans, key=_span_order):
        if merged and s.start < merged[-1].end:
            last = merged[-1]
            length = s.end - s.start
            # REFERENCE is the catch-all: an equally long specific match names the span better.
            wins = length > longest[-1] or (length == longest[-1] and last.label == REFERENCE)
            label = s.label if wins else last.label
            merged[-1] = Span(last.start, max(last.end, s.end), label)
            longest[-1] = max(longest[-1], s.end - s.start)
        else:
            merged.append(s)
            longest.append(s.end - s.start)
    return merged


def redact(text: str, spans: Iterable[Span]) -> str:
    out, pos = [], 0
    for s in merge(spans):
        out.append(text[pos:s.start])
        out.append(f"[{s.label}]")
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def scrub(text: str, record: Mapping[str, Any] | None = None,
          personal_fields: Iterable[str] = (), target_field: str | None = None) -> str:
    """``text`` with the record's personal values and generic personal patterns replaced."""
    terms = record_terms(record or {}, personal_fields, target_field)
    return redact(text, [*term_spans(text, terms), *pattern_spans(text)])
