"""Running the real ``s115hub`` command as an officer would: a child process, its output read
line by line, waits with deadlines, and its whole process family watched."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from services.core.config.settings import REPO_ROOT

CLI = [sys.executable, "-m", "services.cli.main"]


def clean_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any hub settings, plus ``overrides``: the child
    must find its hub only through what the test gives it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("S115HUB_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(overrides)
    return env


def run_cli(args: list[str], env: Mapping[str, str], timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=REPO_ROOT, env=dict(env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for c in map(int, children):
                if c not in found:
                    found.add(c)
                    todo.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _ignore_sigint() -> None:
    # What a non-interactive shell does to a background job (`cmd &`), and what supervisors
    # often do: SIGINT is ignored, so Python installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Running:
    """A long-running CLI command started as a supervisor would start it."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.proc = subprocess.Popen(
            [*CLI, *args], cwd=REPO_ROOT, env=dict(env), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=_ignore_sigint)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                hit = next((ln for ln in self.lines if predicate(ln)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError("never printed the expected line:\n"
                                         + "\n".join(self.lines[-40:]))
                self._seen.wait(min(left, 1.0))

    def stop_with(self, sig: int, timeout: float = 60) -> tuple[int, set[int]]:
        """Send ``sig``; return the exit code and the family pids still alive afterwards
        (waited for with a deadline)."""
        family = descendants(self.proc.pid)
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running {timeout:.0f}s after {sig!r}:\n"
                                 + "\n".join(self.lines[-20:])) from None
        self._reader.join(timeout=5)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        return rc, {p for p in family if alive(p)}

    def kill(self) -> None:
        for p in descendants(self.proc.pid) | {self.proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        self.proc.wait(timeout=10)
