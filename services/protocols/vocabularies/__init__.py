"""The word lists free text is released through: versioned data files shipped in this package.

A protocol names them by ``id@version`` (``incident-en@1``, ``mo-tags@1``). Each file's SHA-256 is
folded into the protocol's signed digest (``signing.protocol_digest``), so an edited list voids
every signature on every protocol that uses it: a vocabulary change is a protocol change.

Two kinds of file, both reviewable by an officer in a text editor:

- ``<id>@<version>.txt``: a word vocabulary. ``#`` starts a comment; ``[words]`` lists words
  released in any case; ``[lower-case only]`` lists everyday words that are also common names
  ("will", "white"), released only when written in lower case; ``[places]`` lists coarse place
  names (towns, districts) released as written. One word per line, lower case.
- ``<id>@<version>.yaml``: a tag set for ``free_text: tags``: ``tags: {<category>: {<tag>:
  [phrase, ...]}}``. Phrases are lower-case words separated by single spaces.

``names-gb@1.txt`` is not a vocabulary but the name list the release uses to type placeholders
and to replace capitalised everyday words that are names; it is bound into the digest the same way.
The lists are built by ``scripts/build_vocabulary.py``; see its docstring for the sources.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from services.core.config.errors import ConfigError

DATA_DIR = Path(__file__).parent
REF = re.compile(r"^[a-z0-9][a-z0-9-]*@[1-9][0-9]*$")
#: The name list every vocabulary release uses; bound into any protocol that releases text.
NAMES_REF = "names-gb@1"
_SECTIONS = {"[words]": "words", "[lower-case only]": "lower_only", "[places]": "places",
             "[forenames]": "forenames", "[surnames]": "surnames",
             "[common forenames]": "common_forenames", "[common surnames]": "common_surnames"}
_WORD = re.compile(r"^[a-z]+(?:['-][a-z]+)*$")


@dataclass(frozen=True)
class Vocabulary:
    ref: str
    words: frozenset[str] = frozenset()
    lower_only: frozenset[str] = frozenset()
    places: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Names:
    """``common``: names common enough that the word was taken out of every vocabulary;
    ``all``: every name on the list, used for typing and capitals; ``forenames``: all forenames
    (common or not)."""

    ref: str
    all: frozenset[str] = frozenset()
    common: frozenset[str] = frozenset()
    forenames: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Tagset:
    ref: str
    #: phrase (tuple of words) -> "category:tag"
    phrases: dict[tuple[str, ...], str] = field(default_factory=dict)
    longest: int = 1


def check_ref(ref: object, suffix: str) -> str:
    """``ref`` if it names a shipped ``<ref><suffix>`` file; else a ConfigError listing those."""
    if not isinstance(ref, str) or not REF.fullmatch(ref):
        raise ConfigError(f"{ref!r} is not a list reference of the form id@version")
    if not (DATA_DIR / f"{ref}{suffix}").is_file():
        known = ", ".join(available(suffix)) or "none"
        raise ConfigError(f"no shipped list {ref!r}; available: {known}")
    return ref


def available(suffix: str) -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in DATA_DIR.glob(f"*@*{suffix}")
                  if p.name[: -len(suffix)] != NAMES_REF)


def path_of(ref: str) -> Path:
    for suffix in (".txt", ".yaml"):
        if (p := DATA_DIR / f"{ref}{suffix}").is_file():
            return p
    raise ConfigError(f"no shipped list {ref!r}")


@cache
def sha256_of(ref: str) -> str:
    """The hash the protocol digest binds. Cached for the life of the process: the files are
    package data, and a process that has released under one content must not see another."""
    return hashlib.sha256(path_of(ref).read_bytes()).hexdigest()


def _sections(ref: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    current: set[str] | None = None
    text = path_of(ref).read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line in _SECTIONS:
            current = out.setdefault(_SECTIONS[line], set())
        elif current is None or not _WORD.fullmatch(line):
            raise ConfigError(f"not a lower-case word or a known section: {line!r}",
                              file=str(path_of(ref)), line=number)
        else:
            current.add(line)
    return out


@cache
def load_vocabulary(ref: str) -> Vocabulary:
    check_ref(ref, ".txt")
    s = _sections(ref)
    return Vocabulary(ref, frozenset(s.get("words", ())), frozenset(s.get("lower_only", ())),
                      frozenset(s.get("places", ())))


@cache
def load_names(ref: str = NAMES_REF) -> Names:
    s = _sections(ref)
    fore = s.get("forenames", set()) | s.get("common_forenames", set())
    common = s.get("common_forenames", set()) | s.get("common_surnames", set())
    return Names(ref, frozenset(fore | common | s.get("surnames", set())), frozenset(common),
                 frozenset(fore))


@cache
def load_tagset(ref: str) -> Tagset:
    check_ref(ref, ".yaml")
    path = path_of(ref)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    tags = doc.get("tags") if isinstance(doc, dict) else None
    if not isinstance(tags, dict):
        raise ConfigError("a tag set needs a 'tags' mapping of category -> tag -> phrases",
                          file=str(path))
    phrases: dict[tuple[str, ...], str] = {}
    for category, entries in tags.items():
        for tag, words in (entries or {}).items():
            for phrase in words or ():
                key = tuple(str(phrase).split())
                if not key or not all(_WORD.fullmatch(w) for w in key):
                    raise ConfigError(f"phrase {phrase!r} of {category}:{tag} is not lower-case "
                                      "words", file=str(path))
                phrases[key] = f"{category}:{tag}"
    return Tagset(ref, phrases, max((len(k) for k in phrases), default=1))
