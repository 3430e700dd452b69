"""Every long-running command stops everything it started on SIGTERM, SIGINT or SIGHUP, even
started the way a supervisor or a background shell starts it (SIGINT ignored): the real command
is started, the signal sent, and the test waits with a deadline for the command to exit and for
every process it started to be gone."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from services.core.config.settings import REPO_ROOT
from tests.conftest import BrokerInfo
from tests.e2e.cli_support import Running, clean_env, descendants

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]


@pytest.mark.own_broker
@pytest.mark.slow
def test_up_given_each_stop_signal_then_broker_and_services_are_all_gone(tmp_path: Path) -> None:
    """One `up --demo` per signal, started side by side (a whole hub takes ~30 s to start on
    a busy 2-core machine; three in a row cost three times that)."""
    hubs = {sig: Running(["up", "--demo", "--rate", "1", "--state-dir",
                          str(tmp_path / sig.name)],
                         clean_env(S115HUB_STATE_DIR=str(tmp_path / sig.name)))
            for sig in SIGNALS}
    try:
        outcome = {}
        for sig, hub in hubs.items():
            hub.wait_for(lambda line: line.startswith("ready in"), timeout=240)
            started = descendants(hub.proc.pid)
            assert len(started) >= 4, f"expected the broker and three services, got {started}"
            assert (tmp_path / sig.name / "s115hub.env").stat().st_mode & 0o777 == 0o600
        for sig, hub in hubs.items():
            outcome[sig] = hub.stop_with(sig)
    finally:
        for hub in hubs.values():
            if hub.proc.poll() is None:
                hub.kill()
    for sig, (rc, left) in outcome.items():
        lines = hubs[sig].lines
        assert rc == 0, f"{sig.name}: exit {rc}\n" + "\n".join(lines[-20:])
        assert not left, f"left running after {sig.name}: {left}"
        assert lines[-1] == "stopped", lines[-5:]
        assert not (tmp_path / sig.name / "s115hub.env").exists(), "a stopped demo's env file"


@pytest.mark.own_broker
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_broker_given_a_stop_signal_then_the_broker_process_is_gone(
        sig: signal.Signals, tmp_path: Path) -> None:
    from services.core.kafka.broker import free_port

    cmd = Running(["broker", "--port", str(free_port())],
                  clean_env(S115HUB_STATE_DIR=str(tmp_path)))
    try:
        cmd.wait_for(lambda line: line.startswith("embedded broker"), timeout=60)
        rc, left = cmd.stop_with(sig)
    finally:
        if cmd.proc.poll() is None:
            cmd.kill()
    assert rc == 0, "\n".join(cmd.lines)
    assert not left, f"tansu left running after {sig.name}: {left}"


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_subscribe_given_a_stop_signal_then_it_exits_cleanly(
        sig: signal.Signals, kafka_broker: BrokerInfo, topic_prefix: str, tmp_path: Path) -> None:
    cmd = Running(["subscribe", "grp-watford"],
                  clean_env(S115HUB_KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
                            S115HUB_TOPIC_PREFIX=topic_prefix,
                            S115HUB_STATE_DIR=str(tmp_path),
                            S115HUB_CONFIG_DIR=str(REPO_ROOT / "deploy" / "hertfordshire")))
    try:
        cmd.wait_for(lambda line: line.startswith("following "), timeout=60)
        rc, left = cmd.stop_with(sig)
    finally:
        if cmd.proc.poll() is None:
            cmd.kill()
    assert rc == 0, "\n".join(cmd.lines)
    assert not left
    assert not any("Traceback" in line for line in cmd.lines), "\n".join(cmd.lines)
