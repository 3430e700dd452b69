"""``free_text: tags``: the text becomes the sorted list of tags whose phrases it contains.

No word of the text is released: only tag names from the protocol's tag set, a controlled
vocabulary written and reviewed in advance. Phrases are matched on the normalised, lower-cased
text as whole words; each start position tries at most ``longest`` words, so the cost is linear
in the text for a fixed tag set.
"""

from __future__ import annotations

import re

from services.protocols.transforms.free_text_normalise import normalise
from services.protocols.transforms.free_text_vocabulary import Meter
from services.protocols.vocabularies import Tagset

# Words as the tag sets write them. A digit or symbol ends a word, so "a1b" is "a" and "b".
_WORDS = re.compile(r"[a-z]+(?:['-][a-z]+)*")


def find_tags(text: str, tagset: Tagset, meter: Meter | None = None) -> list[str]:
    words = _WORDS.findall(normalise(text).lower())
    found: set[str] = set()
    n = len(words)
    for i in range(n):
        for size in range(1, min(tagset.longest, n - i) + 1):
            if meter is not None:
                meter.steps += 1
            tag = tagset.phrases.get(tuple(words[i:i + size]))
            if tag is not None:
                found.add(tag)
    return sorted(found)
