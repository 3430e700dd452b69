"""The state directory is created once and never deleted; the demo wipes only what it made; the
CLI finds the hub's environment file in a documented order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.cli.hub_up import choose_broker
from services.core.config.state_dir import (
    cli_env_file,
    load_env_into,
    parse_env,
    prepare_demo_state,
    prepare_production_state,
    render_env,
    write_env_file,
)
from services.core.errors import HubError


class TestProductionState:
    def test_given_no_directory_then_it_is_created_private_and_marked(self, tmp_path: Path
                                                                       ) -> None:
        state = tmp_path / "state"
        assert prepare_production_state(state) is True
        assert state.stat().st_mode & 0o777 == 0o700
        (state / "master.key").write_text("k")
        assert prepare_production_state(state) is False

    def test_given_existing_contents_then_nothing_is_deleted(self, tmp_path: Path) -> None:
        (tmp_path / "partners.json").write_text("{}")
        prepare_production_state(tmp_path)
        assert (tmp_path / "partners.json").read_text() == "{}"

    def test_given_a_marked_state_without_master_key_then_it_refuses(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("S115HUB_MASTER_KEY", raising=False)
        prepare_production_state(tmp_path)
        with pytest.raises(HubError, match=r"master\.key is missing .* restore it from backup"):
            prepare_production_state(tmp_path)

    def test_given_a_demo_directory_then_production_refuses_it(self, tmp_path: Path) -> None:
        prepare_demo_state(tmp_path / "demo")
        with pytest.raises(HubError, match="is a demo state directory"):
            prepare_production_state(tmp_path / "demo")


class TestDemoState:
    def test_given_a_directory_the_demo_made_then_it_is_wiped(self, tmp_path: Path) -> None:
        prepare_demo_state(tmp_path / "demo")
        (tmp_path / "demo" / "master.key").write_text("old")
        prepare_demo_state(tmp_path / "demo")
        assert not (tmp_path / "demo" / "master.key").exists()

    def test_given_a_directory_it_did_not_make_then_it_refuses_to_delete(self, tmp_path: Path
                                                                         ) -> None:
        (tmp_path / "master.key").write_text("real")
        with pytest.raises(HubError, match="refusing to delete"):
            prepare_demo_state(tmp_path)
        assert (tmp_path / "master.key").read_text() == "real"


class TestEnvFile:
    def test_given_values_then_the_file_is_0600_and_reads_back(self, tmp_path: Path) -> None:
        values = {"S115HUB_STATE_DIR": "/var/lib/s115hub", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
        write_env_file(tmp_path / "s115hub.env", values)
        assert (tmp_path / "s115hub.env").stat().st_mode & 0o777 == 0o600
        assert parse_env((tmp_path / "s115hub.env").read_text()) == values

    def test_given_quotes_export_and_comments_then_they_parse_as_a_shell_would(self) -> None:
        text = "# c\nexport A=1\nB='two words'\n\nC=\"x\"\n"
        assert parse_env(text) == {"A": "1", "B": "two words", "C": "x"}

    def test_given_a_newline_in_a_value_then_it_is_refused(self) -> None:
        with pytest.raises(HubError):
            render_env({"A": "x\ny"})

    def test_given_the_environment_already_sets_a_name_then_it_wins(self, tmp_path: Path
                                                                     ) -> None:
        (tmp_path / "e").write_text("A=file\nB=file\n")
        env = {"A": "shell"}
        assert load_env_into(tmp_path / "e", env) == ["B"]
        assert env == {"A": "shell", "B": "file"}

    def test_lookup_order_explicit_then_variable_then_state_dir_then_demo(self, tmp_path: Path
                                                                           ) -> None:
        default, demo = tmp_path / "default", tmp_path / "demo"
        for d in (default, demo):
            d.mkdir()
            (d / "s115hub.env").write_text("")
        named = tmp_path / "named.env"
        named.write_text("")
        assert cli_env_file(str(named), {}, default, demo) == named
        assert cli_env_file(None, {"S115HUB_ENV_FILE": str(named)}, default, demo) == named
        assert cli_env_file(None, {}, default, demo) == default / "s115hub.env"
        os.unlink(default / "s115hub.env")
        assert cli_env_file(None, {}, default, demo) == demo / "s115hub.env"
        assert cli_env_file(None, {"S115HUB_STATE_DIR": str(tmp_path)}, default, demo) is None

    def test_given_a_named_file_that_does_not_exist_then_it_is_an_error(self, tmp_path: Path
                                                                         ) -> None:
        with pytest.raises(HubError, match="does not exist"):
            cli_env_file(str(tmp_path / "nope"), {}, tmp_path, tmp_path)


class TestBrokerChoice:
    def test_given_kafka_bootstrap_servers_then_the_external_broker_is_used(self) -> None:
        assert choose_broker("auto", demo=False, external="k:9092") == "external"

    def test_given_production_without_a_broker_then_apache_kafka_is_chosen(self) -> None:
        assert choose_broker("auto", demo=False, external=None) == "kafka"
        assert choose_broker("auto", demo=True, external=None) == "embedded"

    def test_given_production_on_the_in_memory_broker_then_it_is_refused(self) -> None:
        with pytest.raises(HubError, match="keeps nothing across a restart"):
            choose_broker("embedded", demo=False, external=None)

    def test_given_tansu_then_it_is_the_embedded_broker(self) -> None:
        assert choose_broker("tansu", demo=True, external=None) == "embedded"

    def test_given_local_kafka_and_an_external_broker_then_it_is_refused(self) -> None:
        with pytest.raises(HubError, match="unset KAFKA_BOOTSTRAP_SERVERS"):
            choose_broker("kafka", demo=False, external="k:9092")


def test_given_a_directory_holding_kafka_data_then_an_in_memory_demo_refuses_to_wipe_it(
        tmp_path: Path) -> None:
    (tmp_path / "kafka" / "node-1").mkdir(parents=True)
    with pytest.raises(HubError, match="refusing to wipe"):
        prepare_demo_state(tmp_path)
    prepare_demo_state(tmp_path, wipe=False)  # the persistent demo on local Kafka carries on
    assert (tmp_path / "kafka" / "node-1").is_dir()
