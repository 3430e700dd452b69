"""Load YAML into pydantic models so that every error names the file, the line and the field.

Officers edit these files by hand; "validation error" without a line number wastes their time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from services.core.config.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the YAML node of every mapping and sequence."""


def _compose(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=source,
                          line=line) from None
    return data, node


def line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that exists in the document."""
    best = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                break
            # The key line is what an editor wants for a scalar; the value line for a block.
            key = next(k for k, v in node.value if v is nxt)
            best = key.start_mark.line + 1
            node = nxt
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and part < len(node.value)):
            node = node.value[part]
            best = node.start_mark.line + 1
        else:
            break
    return best


def parse_text(model: type[M], text: str, source: str = "<text>",
               context: dict[str, Any] | None = None) -> M:
    """Validate YAML ``text`` as ``model``; raise ConfigError naming the first bad field."""
    data, node = _compose(text, source)
    try:
        return model.model_validate(data if data is not None else {}, context=context)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or None
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{err['msg']}{more}", file=source, line=line_of(node, loc),
                          field=field) from None


def load_file(model: type[M], path: Path, context: dict[str, Any] | None = None) -> M:
    return parse_text(model, path.read_text(encoding="utf-8"), str(path), context)
