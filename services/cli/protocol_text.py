"""Writing a signature into a protocol file without rewriting the rest of it.

Officers annotate protocols (why a field is kept, what the board asked for); re-dumping the
parsed document dropped every comment and reflowed every line. Only the top-level
``signatures:`` block is machine-written, so only that block is replaced, textually; everything
else stays byte for byte. The result is parsed back and must equal the signed document, so a file
whose layout this cannot handle is refused rather than mangled.
"""

from __future__ import annotations

import re

import yaml

from services.core.config.errors import ConfigError
from services.protocols.protocol import Protocol, parse_protocol

_TOP_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_SIGNATURES = re.compile(r"^signatures\s*:(?P<rest>.*)$")


def _inline_comment(rest: str) -> str:
    """``  # note`` after ``signatures: []``, kept on the new key line."""
    m = re.search(r"\s#.*$", rest)
    return m.group(0).rstrip("\n") if m else ""


def with_signatures(text: str, signed: Protocol, source: str = "<text>") -> str:
    block = yaml.safe_dump({"signatures": [s.model_dump(mode="json") for s in signed.signatures]},
                           sort_keys=False, width=100, allow_unicode=True)
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if _SIGNATURES.match(line)), None)
    if start is None:
        sep = "" if not text or text.endswith("\n") else "\n"
        out = text + sep + block
    else:
        m = _SIGNATURES.match(lines[start].rstrip("\n"))
        assert m is not None
        comment = _inline_comment(m.group("rest"))
        end = start + 1
        while end < len(lines):
            line = lines[end]
            if _TOP_KEY.match(line) or line.startswith(("#", "---", "...")):
                break
            end += 1
        # Blank lines between the block and what follows belong to the layout, not the block.
        while end > start + 1 and not lines[end - 1].strip():
            end -= 1
        first, *rest_lines = block.splitlines(keepends=True)
        if comment:
            first = first.rstrip("\n") + comment + "\n"
        out = "".join(lines[:start]) + first + "".join(rest_lines) + "".join(lines[end:])
    if parse_protocol(out, source) != signed:
        raise ConfigError("could not write the signature without changing the rest of the "
                          "document (unusual layout of its signatures block)", file=source)
    return out
