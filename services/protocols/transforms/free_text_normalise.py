"""Text normalisation before any allow-list decision: one pass, linear in the input.

What a reader sees must be what the allow-list checks. So, in order:

1. Invisible characters go (zero-width space/joiners, soft hyphen, bidi controls, BOM, variation
   selectors: every ``Cf`` character and the selector blocks). "Jo\u200bhn" is "John".
2. Runs of combining marks are cut to two after each base character. CPython's NFKC sorts each
   run of combining marks by insertion, quadratic in the run's length; no real word needs more.
3. NFKC: full-width, ligature and mathematical letters become plain ones ("ｊｏｈｎ" is "john").
4. Accents are stripped (NFKD, combining marks dropped): "Zoë" is "Zoe".
5. Look-alike letters from Cyrillic and Greek are folded to the Latin letter they imitate
   ("Jоhn" with a Cyrillic о is "John"). Anything else outside ASCII is left as it is: the
   tokeniser treats a word holding it as unknown, so it is never released.
6. A hyphen at a line break joins the word's halves ("Oka-" + "for"); other control characters
   and line breaks become spaces: a name split over a line without a hyphen is seen as the two
   halves it is written as, and neither half is in any vocabulary.
"""

from __future__ import annotations

import re
import unicodedata

# Cyrillic and Greek letters that render like Latin ones (Unicode confusables, the common subset).
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ɡ": "g", "ո": "n", "ս": "u", "ⅼ": "l", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Ԝ": "W",
    "α": "a", "ο": "o", "ν": "v", "ρ": "p", "τ": "t", "υ": "u", "ι": "i", "κ": "k", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
})
_MAX_MARKS = 2


def _invisible(c: str) -> bool:
    o = ord(c)
    return (unicodedata.category(c) == "Cf" or 0xFE00 <= o <= 0xFE0F
            or 0xE0100 <= o <= 0xE01EF or o == 0x034F or o == 0x115F or o == 0x1160
            or o == 0x3164 or o == 0xFFA0)


def _strip_invisible(text: str) -> str:
    out: list[str] = []
    marks = 0
    for c in text:
        if c.isascii():
            out.append(c)
            marks = 0
        elif _invisible(c):
            continue
        elif unicodedata.combining(c):
            marks += 1
            if marks <= _MAX_MARKS:
                out.append(c)
        else:
            out.append(c)
            marks = 0
    return "".join(out)


def _plain(text: str) -> str:
    """Accents off, control characters to spaces."""
    out: list[str] = []
    for c in unicodedata.normalize("NFKD", text):
        if c.isascii():
            out.append(" " if ord(c) < 32 or ord(c) == 127 else c)
        elif unicodedata.combining(c):
            continue
        elif c.isspace() or unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            out.append(" ")
        else:
            out.append(c)
    return "".join(out)


# A word broken over a line with a hyphen is one word ("Oka-\nfor"). Linear: a match can only
# start at a hyphen and the blank runs it scans belong to that hyphen alone.
_LINE_HYPHEN = re.compile(r"-[ \t]*\r?\n[ \t]*")


#: ASCII control characters (line breaks, tabs, NUL ...) to spaces, in one C-level pass.
_ASCII_CONTROLS = dict.fromkeys((*range(32), 127), " ")


def normalise(text: str) -> str:
    """``text`` as the allow-list sees it. Linear: every step is one pass over the text."""
    text = _LINE_HYPHEN.sub("", text)
    if text.isascii():
        return text.translate(_ASCII_CONTROLS)
    text = _strip_invisible(text)
    text = unicodedata.normalize("NFKC", text)
    # NFKC can bring back what step 1 took out (a compatibility form of a format character).
    text = _strip_invisible(text).translate(_CONFUSABLES)
    return _plain(text).translate(_CONFUSABLES)
