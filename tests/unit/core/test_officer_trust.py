"""Officer trust anchors (services/core/crypto/officer_trust.py): which officer keys may sign
protocols."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.config.errors import ConfigError
from services.core.config.state import ConfigState
from services.core.crypto.officer_trust import (
    AnchorFile,
    AnchorLog,
    KeyChange,
    change_for,
    countersign,
    dump_log,
    fingerprint,
    genesis,
    key_id_of,
    parse_log,
    replay,
    trusted_keys,
)
from services.protocols.in_force import protocol_set_of
from services.protocols.lifecycle import protocol_status
from services.protocols.protocol import Protocol


def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys() -> dict[str, Ed25519PrivateKey]:
    return {"police": key(), "fire": key()}


@pytest.fixture
def log(keys: dict[str, Ed25519PrivateKey]) -> AnchorLog:
    return genesis((p, f"officer {p}", k.public_key()) for p, k in sorted(keys.items()))


def propose(log: AnchorLog, change: KeyChange) -> AnchorLog:
    return log.model_copy(update={"changes": [*log.changes, change]})


class TestGenesis:
    def test_given_a_pinned_genesis_then_its_keys_are_trusted(self, log: AnchorLog,
                                                              keys: dict) -> None:
        result = trusted_keys(log, fingerprint(log))
        assert result.problems == []
        assert {p for p, _ in result.keys.values()} == {"police", "fire"}
        assert result.keys[key_id_of(keys["police"].public_key())][0] == "police"

    def test_given_no_pinned_fingerprint_then_no_key_is_trusted(self, log: AnchorLog) -> None:
        result = trusted_keys(log, None)
        assert result.keys == {}
        assert "pins no officer_keys_sha256" in result.problems[0]

    def test_given_a_file_that_differs_from_the_pin_then_no_key_is_trusted(
            self, log: AnchorLog) -> None:
        pinned = fingerprint(log)
        edited = log.model_copy(update={"genesis": [
            *log.genesis, change_for("council", "x", key().public_key())]})
        result = trusted_keys(edited, pinned)
        assert result.keys == {}
        assert "differs from the county's" in result.problems[0]

    def test_given_no_file_then_no_key_is_trusted(self) -> None:
        assert trusted_keys(None, "0" * 64).keys == {}

    def test_given_a_genesis_entry_with_a_wrong_key_id_then_it_is_ignored(self) -> None:
        good = change_for("police", "p", key().public_key())
        forged = good.model_copy(update={"key_id": "0123456789abcdef"})
        result = replay(AnchorLog(genesis=[forged]))
        assert result.keys == {}
        assert "key_id does not match" in result.problems[0]

    def test_given_one_key_for_two_parties_then_the_second_is_refused(self) -> None:
        k = key().public_key()
        result = replay(AnchorLog(genesis=[change_for("police", "p", k),
                                           change_for("fire", "f", k)]))
        assert [p for p, _ in result.keys.values()] == ["police"]
        assert "already belongs to police" in result.problems[0]


class TestChanges:
    def test_given_a_new_key_countersigned_by_another_party_then_it_is_trusted(
            self, log: AnchorLog, keys: dict) -> None:
        new = key()
        log = propose(log, change_for("police", "new officer", new.public_key()))
        log = countersign(log, 0, keys["fire"], "fire", "officer fire")
        result = replay(log)
        assert result.problems == []
        assert result.provenance[key_id_of(new.public_key())] == (
            "police", "new officer", "officer fire@fire")

    def test_given_an_uncountersigned_change_then_it_is_not_trusted(self, log: AnchorLog) -> None:
        new = key()
        result = replay(propose(log, change_for("police", "p", new.public_key())))
        assert key_id_of(new.public_key()) not in result.keys
        assert "until another party's officer countersigns" in result.problems[0]

    def test_given_a_party_countersigning_its_own_key_then_countersign_refuses(
            self, log: AnchorLog, keys: dict) -> None:
        log = propose(log, change_for("police", "p", key().public_key()))
        with pytest.raises(ConfigError, match="cannot countersign its own"):
            countersign(log, 0, keys["police"], "police", "officer police")

    def test_given_a_self_countersignature_written_by_hand_then_it_is_ignored(
            self, log: AnchorLog, keys: dict) -> None:
        new = key()
        log = propose(log, change_for("police", "p", new.public_key()))
        signed = countersign(log, 0, keys["fire"], "fire", "officer fire")
        cs = signed.changes[0].countersignature
        assert cs is not None
        relabelled = cs.model_copy(update={"party": "police"})
        forged = log.model_copy(update={"changes": [
            log.changes[0].model_copy(update={"countersignature": relabelled})]})
        result = replay(forged)
        assert key_id_of(new.public_key()) not in result.keys
        assert "the same party" in result.problems[0]

    def test_given_a_countersignature_by_an_untrusted_key_then_the_change_is_ignored(
            self, log: AnchorLog) -> None:
        outsider, new = key(), key()
        log = propose(log, change_for("police", "p", new.public_key()))
        log = countersign(log, 0, outsider, "fire", "someone")
        result = replay(log)
        assert key_id_of(new.public_key()) not in result.keys
        assert "not trusted at this point" in result.problems[0]

    def test_given_a_change_edited_after_countersigning_then_it_is_ignored(
            self, log: AnchorLog, keys: dict) -> None:
        log = propose(log, change_for("police", "p", key().public_key()))
        signed = countersign(log, 0, keys["fire"], "fire", "officer fire")
        other = key().public_key()
        swapped = change_for("police", "p", other).model_copy(
            update={"countersignature": signed.changes[0].countersignature})
        result = replay(signed.model_copy(update={"changes": [swapped]}))
        assert key_id_of(other) not in result.keys
        assert "does not verify" in result.problems[0]

    def test_given_a_replacement_then_the_old_key_is_no_longer_trusted(
            self, log: AnchorLog, keys: dict) -> None:
        old = key_id_of(keys["police"].public_key())
        new = key()
        log = propose(log, change_for("police", "p2", new.public_key(), replaces=old))
        result = replay(countersign(log, 0, keys["fire"], "fire", "officer fire"))
        assert old not in result.keys
        assert key_id_of(new.public_key()) in result.keys

    def test_given_a_removal_countersigned_then_the_key_is_gone(self, log: AnchorLog,
                                                                keys: dict) -> None:
        kid = key_id_of(keys["police"].public_key())
        log = propose(log, KeyChange(action="remove", party="police", officer="p", key_id=kid))
        result = replay(countersign(log, 0, keys["fire"], "fire", "officer fire"))
        assert kid not in result.keys

    def test_given_a_removed_change_in_the_middle_then_later_countersignatures_fail(
            self, log: AnchorLog, keys: dict) -> None:
        a, b = key(), key()
        log = countersign(propose(log, change_for("police", "a", a.public_key())), 0,
                          keys["fire"], "fire", "officer fire")
        log = countersign(propose(log, change_for("police", "b", b.public_key())), 1,
                          keys["fire"], "fire", "officer fire")
        cut = log.model_copy(update={"changes": log.changes[1:]})
        result = replay(cut)
        assert key_id_of(b.public_key()) not in result.keys
        assert "does not verify" in result.problems[0]


class TestFile:
    def test_given_a_dumped_log_then_it_parses_back_with_the_same_fingerprint(
            self, log: AnchorLog, keys: dict) -> None:
        log = countersign(propose(log, change_for("police", "n", key().public_key())), 0,
                          keys["fire"], "fire", "officer fire")
        text = dump_log(log)
        assert f'officer_keys_sha256: "{fingerprint(log)}"' in text
        assert fingerprint(parse_log(text, "f.yaml")) == fingerprint(log)

    def test_given_a_bad_file_then_the_error_names_file_and_field(self) -> None:
        with pytest.raises(ConfigError, match=r"f\.yaml.*genesis"):
            parse_log("genesis: [{party: police}]\n", "f.yaml")

    def test_given_an_unreadable_file_then_anchor_file_reports_instead_of_raising(
            self, tmp_path) -> None:
        path = tmp_path / "officer-keys.yaml"
        path.write_text("genesis: 3\n")
        anchors = AnchorFile(path)
        result = anchors.trust("0" * 64)
        assert result.keys == {}
        assert "officer key file refused" in result.problems[0]


# -- what trust means for protocols ------------------------------------------------------------


def _protocol() -> Protocol:
    """The shipped police protocol, its parties relabelled to the two test parties, in date."""
    from services.core.config.settings import REPO_ROOT
    from services.protocols.protocol import load_protocol

    p = load_protocol(REPO_ROOT / "deploy" / "hertfordshire" / "protocols" / "police-district.yaml")
    today = date.today()
    return p.model_copy(update={"disclosers": ["police"], "recipients": ["fire"],
                                "valid_from": today - timedelta(days=1),
                                "valid_until": today + timedelta(days=30),
                                "review_by": today + timedelta(days=20), "signatures": []})


def test_given_a_protocol_signed_by_a_key_only_on_the_topic_then_it_is_not_live(
        tmp_path, log: AnchorLog, keys: dict) -> None:
    from services.protocols.signing import sign_protocol

    path = tmp_path / "officer-keys.yaml"
    path.write_text(dump_log(log))
    anchors = AnchorFile(path)
    rogue = key()
    protocol = _protocol()
    good = sign_protocol(sign_protocol(protocol, keys["police"], "police", "o"),
                         keys["fire"], "fire", "o")
    forged = sign_protocol(good, rogue, "police", "rogue")
    assert protocol_status(good, today=date.today(),
                           officer_keys=anchors.trust(fingerprint(log)).keys).live
    state = ConfigState()
    state.apply("county", {"county": "c", "partners": [], "groups": [],
                           "officer_keys_sha256": fingerprint(log)})
    from cryptography.hazmat.primitives import serialization
    pem = rogue.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    state.apply(f"officer/{key_id_of(rogue.public_key())}",
                {"party": "police", "officer": "rogue", "public_key_pem": pem.decode()})
    state.apply("protocol/p1@1", {"yaml": _yaml(forged)})
    pset, errors = protocol_set_of(state, anchors)
    (st,) = pset.statuses(date.today())
    assert not st.live
    assert "unknown key" in "; ".join(st.reasons)
    assert "only on the config topic" in errors["officers"]


def _yaml(protocol: Protocol) -> str:
    from demo.bootstrap import protocol_yaml

    return protocol_yaml(protocol)


def test_given_a_key_file_the_county_does_not_pin_then_config_apply_refuses_in_one_line(
        tmp_path, log: AnchorLog) -> None:
    """Nothing is published (no broker is even contacted): the error names the county field."""
    from typer.testing import CliRunner

    from services.cli.main import app
    from services.core.config.settings import REPO_ROOT

    (tmp_path / "county.yaml").write_text(
        (REPO_ROOT / "deploy" / "hertfordshire" / "county.yaml").read_text()
        + f"\nofficer_keys_sha256: \"{'0' * 64}\"\n")
    keys = tmp_path / "officer-keys.yaml"
    keys.write_text(dump_log(log))
    (tmp_path / "protocols").mkdir()
    out = CliRunner().invoke(app, ["config", "apply", "--config-dir", str(tmp_path),
                                   "--protocols-dir", str(tmp_path / "protocols"),
                                   "--officer-keys", str(keys)],
                             env={"S115HUB_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert out.exit_code == 1
    assert "officer_keys_sha256" in out.stderr
    assert fingerprint(log) in out.stderr
    assert "Traceback" not in out.output
    assert len(out.stderr.strip().splitlines()) == 1


def test_given_an_unquoted_all_digit_fingerprint_then_the_county_error_says_quote_it(
        tmp_path) -> None:
    from services.core.config.county import load_county
    from services.core.config.settings import REPO_ROOT

    path = tmp_path / "county.yaml"
    path.write_text((REPO_ROOT / "deploy" / "hertfordshire" / "county.yaml").read_text()
                    + f"\nofficer_keys_sha256: {'1' * 64}\n")
    with pytest.raises(ConfigError, match=r"put the fingerprint in quotes.*officer_keys_sha256"):
        load_county(path)


def test_given_the_officer_cli_then_init_propose_countersign_show_rotate_a_key(tmp_path) -> None:
    """The officer's workflow: a first set, a proposed replacement that counts only once another
    party's officer countersigns it, and the fingerprint to pin at each step."""
    from typer.testing import CliRunner

    from services.cli.main import app
    from services.protocols.signing import generate_officer_key, save_private_key

    keys = {}
    for party in ("herts-police", "herts-fire"):
        private_pem, public_pem, kid = generate_officer_key()
        (tmp_path / "officers" / party).mkdir(parents=True)
        save_private_key(tmp_path / "officers" / party / f"{kid}.key.pem", private_pem)
        (tmp_path / "officers" / party / f"{kid}.pub.pem").write_bytes(public_pem)
        keys[party] = kid
    _, new_public, new_kid = generate_officer_key()
    (tmp_path / "new.pub.pem").write_bytes(new_public)
    file = tmp_path / "officer-keys.yaml"
    run = CliRunner()

    out = run.invoke(app, ["officer-keys", "init", str(file), "--officers-dir",
                           str(tmp_path / "officers")])
    assert out.exit_code == 0, out.output
    first = re.search(r'officer_keys_sha256: "([0-9a-f]{64})"', out.output)
    assert first
    assert run.invoke(app, ["officer-keys", "init", str(file), "--officers-dir",
                            str(tmp_path / "officers")]).exit_code == 1  # never overwritten
    out = run.invoke(app, ["officer-keys", "propose", str(file), "--party", "herts-police",
                           "--officer", "New", "--public-key", str(tmp_path / "new.pub.pem"),
                           "--replaces", keys["herts-police"]])
    assert out.exit_code == 0, out.output
    shown = run.invoke(app, ["officer-keys", "show", str(file)])
    assert shown.exit_code == 1
    assert "until another party's officer countersigns" in shown.output
    [police_key] = (tmp_path / "officers" / "herts-police").glob("*.key.pem")
    own = run.invoke(app, ["officer-keys", "countersign", str(file), "--key", str(police_key),
                           "--party", "herts-police", "--officer", "Old"])
    assert own.exit_code == 1
    assert "cannot countersign its own" in own.stderr
    [fire_key] = (tmp_path / "officers" / "herts-fire").glob("*.key.pem")
    out = run.invoke(app, ["officer-keys", "countersign", str(file), "--key", str(fire_key),
                           "--party", "herts-fire", "--officer", "Fire Officer"])
    assert out.exit_code == 0, out.output
    second = re.search(r'officer_keys_sha256: "([0-9a-f]{64})"', out.output)
    assert second
    assert second.group(1) != first.group(1)
    shown = run.invoke(app, ["officer-keys", "show", str(file)])
    assert shown.exit_code == 0, shown.output
    assert f"herts-police: {new_kid} New (vouched: Fire Officer@herts-fire)" in shown.output
    assert keys["herts-police"] not in shown.output
