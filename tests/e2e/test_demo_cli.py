"""The README's demo command: ``s115hub up --demo`` shows records reaching tasking groups within a
minute, and Ctrl-C stops everything it started (broker and services), leaving no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.core.config.settings import REPO_ROOT

pytestmark = [pytest.mark.own_broker, pytest.mark.slow]

ROW = re.compile(r"^\s+(grp-[a-z0-9-]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            children = (task / "children").read_text().split() if (task / "children").exists() \
                else []
            for c in map(int, children):
                if c not in found:
                    found.add(c)
                    todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_demo_delivers_within_a_minute_and_ctrl_c_leaves_nothing_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KAFKA_BOOTSTRAP_SERVERS", "S115HUB_KAFKA_BOOTSTRAP_SERVERS")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up", "--demo", "--rate", "40",
         "--state-dir", str(tmp_path / "demo")],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # A test run started in the background inherits SIGINT ignored; Ctrl-C is under test.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    delivered: dict[str, int] = {}
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = ROW.match(line)
            if m:
                delivered[m.group(1)] = int(m.group(6))
                if sum(1 for n in delivered.values() if n > 0) >= 5:
                    seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout=60 + 60), (
            "no deliveries to at least five groups within two minutes:\n" + "\n".join(lines[-40:]))
        first_seen = time.monotonic() - started
        print(f"deliveries to {sum(n > 0 for n in delivered.values())} groups after "
              f"{first_seen:.0f}s (including start-up)")
        assert any("/openapi.json" in line for line in lines)
        assert any("/metrics" in line for line in lines)
        family = _descendants(proc.pid)
        assert len(family) >= 4, f"expected broker and three services under the CLI, got {family}"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    reader.join(timeout=5)
    assert rc == 0, "\n".join(lines[-30:])
    assert lines[-1] == "stopped", lines[-5:]
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in family if _alive(p)], "processes left running after Ctrl-C"
