"""The record-aware scrubber as it was before it was made fast: one compiled regex per value
and eight per date of birth. Kept only as a test oracle: whatever these patterns removed, the
fast scrubber must remove too (``test_free_text_oracle``). Not imported by the service.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
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


def pattern_spans(text: str) -> list[Span]:
    """Spans of generic personal-data patterns in ``text``."""
    spans = list(_nhs_spans(text))
    for pattern, label in _GENERIC:
        spans.extend(_regex_spans(pattern, label, text))
    return spans


# --- the record's own values --------------------------------------------------------------------

_NAME_STOPWORDS = frozenset((
    "of", "to", "in", "at", "on", "by", "an", "as", "is", "it", "be", "he", "we", "me", "my", "no",
    "so", "up", "or", "do", "go", "us", "am", "if", "mr", "mrs", "ms", "miss", "mx", "dr", "prof",
    "sir", "dame",
))
_DIGIT_SEP = r"[\s\-.()]{0,2}"
_WORD_SEP = r"[\s,.]+"
_MIN_TERM = 3


@dataclass(frozen=True)
class Term:
    label: str
    pattern: re.Pattern[str]


def _fold(text: str) -> str:
    """Accents stripped: a record's "Zoë" must also catch "Zoe" in the text."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _literal(text: str) -> str:
    """Regex for ``text`` with any run of spaces or commas matched loosely and ' as ' or ’."""
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    return _WORD_SEP.join(re.sub(r"['’]", "['’]?", re.escape(w)) for w in words)


# Compiling is most of the scrubber's cost (measured: ~3 ms per case-insensitive date pattern,
# 6 ms per police record). The same names, streets and dates of birth recur across records, and
# Python's own regex cache (512 entries) is too small for a busy stream, so terms are cached here.
@lru_cache(maxsize=16_384)
def _words(source: str, label: str) -> Term:
    return Term(label, re.compile(rf"(?<!\w){source}(?!\w)", re.I))


@lru_cache(maxsize=4_096)
def _digits(source: str, label: str) -> Term:
    return Term(label, re.compile(rf"(?<!\d){source}(?!\d)"))


def name_terms(name: str) -> list[Term]:
    """Full name, reversed ("Smith, John"), and each name token on its own."""
    out: list[Term] = []
    for variant in {name, _fold(name)}:
        tokens = [t.strip(".") for t in re.split(r"[\s,]+", variant) if t.strip(".")]
        tokens = [t for t in tokens if t.casefold() not in _NAME_STOPWORDS or len(tokens) == 1]
        if not tokens:
            continue
        out.append(_words(_WORD_SEP.join(_literal(t) for t in tokens), NAME))
        if len(tokens) > 1:
            rev = [tokens[-1], *tokens[:-1]]
            out.append(_words(_WORD_SEP.join(_literal(t) for t in rev), NAME))
        parts = set(tokens)
        for t in tokens:
            parts.update(p for p in t.split("-") if p)
        for part in parts:
            # Two-letter surnames (Wu, Ng, Li) are real; two-letter English words are not names.
            short_ok = len(part) == 2 and part.casefold() not in _NAME_STOPWORDS
            if len(part) >= _MIN_TERM or short_ok:
                out.append(_words(_literal(part), NAME))
    return out


def address_terms(address: str) -> list[Term]:
    """The whole address, each comma-separated part, and each part without its house number."""
    out = [_words(_literal(address), ADDRESS)]
    for part in (p.strip() for p in address.split(",")):
        candidates = {part, re.sub(r"^(?:flat\s+)?\d+[a-z]?\s+", "", part, flags=re.I)}
        for c in candidates:
            if len(c) < 4 or not re.search(r"[A-Za-z]{3}", c):
                continue
            label = POSTCODE if _POSTCODE.fullmatch(c) else ADDRESS
            out.append(_words(_literal(c), label))
    return out


def number_terms(value: str, label: str) -> list[Term]:
    """A phone or NHS number, whatever the spacing; a UK phone also in +44 form."""
    compact = re.sub(r"[^\d+]", "", value)
    if len(compact.lstrip("+")) < 6:
        return [_words(_literal(value), label)] if len(value.strip()) >= _MIN_TERM else []
    for prefix in ("+44", "0044"):
        if compact.startswith(prefix):
            # "+44 (0)1234 ..." carries the trunk zero already.
            compact = "0" + compact[len(prefix):].lstrip("0")
    digits = re.sub(r"\D", "", compact)
    body = _DIGIT_SEP.join(digits[1:])
    if digits.startswith("0"):
        lead = r"(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(?0)"
        return [_digits(lead + _DIGIT_SEP + body, label)]
    return [_digits(digits[0] + _DIGIT_SEP + body, label)]


def email_terms(email: str) -> list[Term]:
    out = [_words(re.escape(email.strip()), EMAIL)]
    local = email.split("@", 1)[0].strip()
    if len(local) >= 4:
        out.append(_words(re.escape(local), EMAIL))
    return out


def date_terms(d: date) -> list[Term]:
    """The date in the formats people write: 01/02/1990, 1 Feb 1990, 1990-02-01, Feb 1990 ..."""
    dd, mm = f"0?{d.day}", f"0?{d.month}"
    yyyy, yy = f"{d.year:04d}", f"{d.year % 100:02d}"
    year = rf"(?:{yyyy}|'?{yy})"
    nth = rf"0?{d.day}(?:st|nd|rd|th)?"
    mon = _MONTHS[d.month - 1] + r"\.?"
    sep = r"\s*[/\-.]\s*"
    variants = [
        rf"{dd}{sep}{mm}{sep}{year}",
        rf"{mm}{sep}{dd}{sep}{year}",  # US order: a false positive costs less than a miss
        rf"{yyyy}{sep}{mm}{sep}{dd}",
        rf"{nth}(?:\s+of)?\s+{mon},?\s+{year}",
        rf"{mon}\s+{nth},?\s+{year}",
        rf"{mon},?\s+{yyyy}",
        f"{d.day:02d}{d.month:02d}{yyyy}",
        f"{yyyy}{d.month:02d}{d.day:02d}",
    ]
    return [_words(v, DATE) for v in variants]


def postcode_terms(postcode: str) -> list[Term]:
    compact = re.sub(r"\s+", "", postcode).upper()
    if m := re.fullmatch(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})", compact):
        return [_words(rf"{m[1]}\s*{m[2]}", POSTCODE)]
    return []


def field_kind(name: str, value: Any) -> str | None:
    """What a personal field holds, from its value's type, then its name, then its shape."""
    if isinstance(value, Mapping) or hasattr(value, "lat"):
        return LOCATION
    if isinstance(value, (date, datetime)):
        return DATE
    n = name.casefold()
    for needle, kind in (("email", EMAIL), ("phone", PHONE), ("mobile", PHONE), ("nhs", NHS_NUMBER),
                         ("postcode", POSTCODE), ("dob", DATE), ("birth", DATE),
                         ("address", ADDRESS), ("name", NAME)):
        if needle in n:
            return kind
    text = str(value)
    if "@" in text and _EMAIL.fullmatch(text.strip()):
        return EMAIL
    if re.fullmatch(r"[\d\s\-+().]{6,}", text.strip()):
        return PHONE
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


def terms_for(name: str, value: Any, *, is_target: bool) -> list[Term]:
    kind = field_kind(name, value)
    if kind == LOCATION:
        return []  # coordinates in text are caught by the generic pattern
    if kind == DATE:
        d = _parse_date(value)
        return date_terms(d) if d else []
    text = str(value).strip()
    if len(text) < 2:
        return []
    if kind == NAME:
        return name_terms(text)
    if kind == ADDRESS:
        return address_terms(text)
    if kind in (PHONE, NHS_NUMBER):
        return number_terms(text, kind)
    if kind == EMAIL:
        return email_terms(text)
    if kind == POSTCODE:
        return postcode_terms(text) or [_words(_literal(text), POSTCODE)]
    # Another free-text field: its whole value may be quoted here. Not the field being scrubbed,
    # whose whole value would otherwise replace itself.
    if is_target or len(text) < 4:
        return []
    return [_words(_literal(text), PERSONAL)]


def record_terms(record: Mapping[str, Any], personal_fields: Iterable[str],
                 target_field: str | None = None) -> list[Term]:
    """Patterns for every personal value held in ``record``."""
    out: list[Term] = []
    for name in sorted(personal_fields):
        value = record.get(name)
        if value is None or value == "":
            continue
        out.extend(terms_for(name, value, is_target=name == target_field))
    return out


def term_spans(text: str, terms: Iterable[Term]) -> list[Span]:
    return [Span(m.start(), m.end(), t.label) for t in terms for m in t.pattern.finditer(text)]


# --- replacing ----------------------------------------------------------------------------------


def merge(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans become one, labelled after the longest of them."""
    merged: list[Span] = []
    longest: list[int] = []
    for s in sorted(spans):
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
