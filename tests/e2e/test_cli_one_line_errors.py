"""Every CLI failure is one clear line on stderr and a non-zero exit, never a traceback: the real
``s115hub`` command is run against each failure an officer meets first."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.config.settings import REPO_ROOT
from services.core.kafka.broker import free_port
from tests.e2e.cli_support import clean_env, run_cli

pytestmark = pytest.mark.own_broker

HERTS = REPO_ROOT / "deploy" / "hertfordshire"


def assert_one_line(result: object, *expected: str) -> str:
    rc, out, err = result.returncode, result.stdout, result.stderr  # type: ignore[attr-defined]
    assert rc != 0, f"exit 0 on a failure:\n{out}{err}"
    assert "Traceback" not in out + err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("s115hub: error: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_broker_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(S115HUB_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
                     S115HUB_STATE_DIR=str(tmp_path), S115HUB_CONFIG_DIR=str(HERTS))


# `config apply` now stops at the pinned officer key file before it needs a broker, so the
# broker path of an admin-client command is `retention report`.
@pytest.mark.parametrize("command", [["protocol", "status"], ["retention", "report"]],
                         ids=["protocol-status", "retention-report"])
def test_given_no_broker_then_one_line_says_where_it_looked_and_what_to_check(
        command: list[str], no_broker_env: dict[str, str]) -> None:
    line = assert_one_line(run_cli(command, no_broker_env, timeout=60),
                           "cannot reach the Kafka broker at 127.0.0.1:")
    assert "S115HUB_ENV_FILE" in line or "no env file" in line


def test_given_a_partner_in_no_county_file_then_partner_add_refuses_and_issues_no_key(
        no_broker_env: dict[str, str], tmp_path: Path) -> None:
    assert_one_line(run_cli(["partner", "add", "halton-police"], no_broker_env),
                    "'halton-police' is in no county file")
    assert not (tmp_path / "partners.json").exists()


def test_given_an_unknown_group_then_subscribe_says_so(no_broker_env: dict[str, str]) -> None:
    assert_one_line(run_cli(["subscribe", "grp-nowhere"], no_broker_env),
                    "'grp-nowhere' is not in")


def test_given_a_missing_env_file_then_one_line_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    assert_one_line(run_cli(["--env-file", str(missing), "status"], clean_env()),
                    f"environment file {missing} does not exist")


def test_given_a_key_for_a_party_not_in_the_protocol_then_sign_says_so(
        tmp_path: Path, no_broker_env: dict[str, str]) -> None:
    protocol = tmp_path / "p.yaml"
    protocol.write_text((HERTS / "protocols" / "fire-district.yaml").read_text())
    keys = tmp_path / "keys"
    made = run_cli(["protocol", "keygen", "herts-police", "--out-dir", str(keys)], no_broker_env)
    assert made.returncode == 0, made.stderr
    key = next((keys / "herts-police").glob("*.key.pem"))
    assert_one_line(run_cli(["protocol", "sign", str(protocol), "--key", str(key)],
                            no_broker_env), "'herts-police' is not a party to fire-district@1")


def test_given_the_env_file_up_writes_then_the_cli_uses_its_settings(
        tmp_path: Path) -> None:
    """The env file is read by default from the state directory: here it names a county
    directory that does not exist, and the CLI's error shows it was used."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "s115hub.env").write_text(f"S115HUB_CONFIG_DIR={tmp_path / 'elsewhere'}\n")
    assert_one_line(run_cli(["partner", "add", "x"], clean_env(S115HUB_STATE_DIR=str(state))),
                    f"no county file at {tmp_path / 'elsewhere'}")


def test_given_a_usage_error_then_it_is_one_line_not_a_usage_panel(
        no_broker_env: dict[str, str]) -> None:
    assert_one_line(run_cli(["protocol", "verify"], no_broker_env),
                    "s115hub protocol verify: Missing argument", "--help")


def test_protocol_verify_finds_the_county_officers_without_being_told(
        tmp_path: Path, no_broker_env: dict[str, str]) -> None:
    county = tmp_path / "county"
    (county / "protocols").mkdir(parents=True)
    protocol = county / "protocols" / "fire-district.yaml"
    protocol.write_text((HERTS / "protocols" / "fire-district.yaml").read_text())
    assert_one_line(run_cli(["protocol", "verify", str(protocol)], no_broker_env),
                    f"no officers directory at {county / 'officers'}")
    made = run_cli(["protocol", "keygen", "herts-fire", "--out-dir", str(tmp_path / "keys")],
                   no_broker_env)
    assert made.returncode == 0, made.stderr
    (county / "officers" / "herts-fire").mkdir(parents=True)
    for pub in (tmp_path / "keys" / "herts-fire").glob("*.pub.pem"):
        (county / "officers" / "herts-fire" / pub.name).write_bytes(pub.read_bytes())
    key = next((tmp_path / "keys" / "herts-fire").glob("*.key.pem"))
    signed = run_cli(["protocol", "sign", str(protocol), "--key", str(key)], no_broker_env)
    assert signed.returncode == 0, signed.stderr
    # Read from <county>/officers: the fire service's signature is found, the others' are not.
    result = run_cli(["protocol", "verify", str(protocol)], no_broker_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT LIVE" in result.stdout
    missing = result.stdout.split("unsigned by", 1)
    assert len(missing) == 2, result.stdout
    assert "herts-fire" not in missing[1].split(";", 1)[0], result.stdout
