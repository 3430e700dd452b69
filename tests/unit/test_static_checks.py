"""The two checks the project promises anyone can run (issue 14): ruff and mypy over the whole
tree (services, schemas, demo, bench, tests; mypy's files are set in pyproject.toml) find nothing.
They run here so a change that breaks either fails the suite, not just a reviewer's eye."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.core.config.settings import REPO_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.slow
def test_mypy_finds_nothing_in_the_configured_files() -> None:
    done = _run("mypy")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout, done.stdout[-2000:]
