"""docs/architecture.md names a file for every stage and rule: each path it names must exist, so
a module moved without the map being updated fails here rather than misleading a reader."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATH = re.compile(r"`((?:services|schemas|demo|bench|tests)/[A-Za-z0-9_/.*-]+)`")


def _paths(doc: str) -> list[str]:
    return PATH.findall((ROOT / doc).read_text(encoding="utf-8"))


def _exists(path: str) -> bool:
    # "free_text*.py" names a family of files; "transforms/" a folder.
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_every_path_in_the_architecture_page_exists() -> None:
    paths = _paths("docs/architecture.md")
    assert len(paths) > 40  # the table was read
    assert [p for p in paths if not _exists(p)] == []


def test_the_readme_links_the_architecture_page() -> None:
    assert "docs/architecture.md" in (ROOT / "README.md").read_text(encoding="utf-8")
