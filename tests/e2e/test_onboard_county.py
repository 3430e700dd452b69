"""Issue 16's "done when": a new county (Halton) is onboarded on a production hub by the commands
of deploy/README.md ("One server") alone, run across a restart of the hub's services with no
data or key lost, and checked (protocol status, subscribe, status, audit verify).

The broker is the session's Kafka standing in for the operator's Apache Kafka (the README's
`KAFKA_BOOTSTRAP_SERVERS`); it outlives the restart, as a Kafka unit does when the hub's unit
restarts. Last, the officer reconciles the partner's period by its own references (`s115hub
reconcile`), which must account for every record sent, across the restart.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.core.areas import AreaIndex
from services.core.config.settings import REPO_ROOT
from services.core.kafka.broker import free_port
from tests.conftest import BrokerInfo
from tests.e2e.cli_support import Running, clean_env, run_cli

pytestmark = pytest.mark.slow

HALTON_LEA = "E05001588"
PARTIES = ("cheshire-police", "halton-bc", "grp-halton", "grp-runcorn-old-town")


def ok(result: Any) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return str(result.stdout)


def police(n: int, lat: float, lon: float) -> dict[str, Any]:
    return {"source_id": f"HAL-{n:04d}", "category": "anti-social-behaviour",
            "occurred_at": f"2026-11-{10 + n % 10:02d}T21:{n % 60:02d}:00Z",
            "location": {"lat": lat, "lon": lon}, "victim_name": "Synthetic Person"}


def publish(url: str, key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    body = "\n".join(json.dumps(r) for r in records)
    r = httpx.post(f"{url}/v1/feeds/police/ndjson", content=body, timeout=60,
                   headers={"X-API-Key": key, "Content-Type": "application/x-ndjson"})
    assert r.status_code in (200, 207, 422), r.text
    return dict(r.json())


def received(cli_env: dict[str, str], group: str, n: int) -> list[dict[str, Any]]:
    out = ok(run_cli(["subscribe", group, "--limit", str(n)], cli_env, timeout=180))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_onboard_halton_run_across_a_restart_and_check_it(
        kafka_broker: BrokerInfo, topic_prefix: str, tmp_path: Path) -> None:
    county = tmp_path / "etc" / "county"
    keys = tmp_path / "officer-keys"
    state = tmp_path / "var" / "s115hub"
    # What /etc/s115hub/s115hub.env says (deploy/systemd/s115hub.env), with free ports.
    ports = {svc: free_port() for svc in ("ingest", "depersonalise", "router")}
    unit_env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=kafka_broker.bootstrap,
        S115HUB_KAFKA_IDEMPOTENT_PRODUCER=str(kafka_broker.idempotent_producer),
        S115HUB_TOPIC_PREFIX=topic_prefix, S115HUB_STATE_DIR=str(state),
        S115HUB_CONFIG_DIR=str(county),
        **{f"S115HUB_{svc.upper()}_PORT": str(p) for svc, p in ports.items()})

    # 1. The county directory, checked.
    shutil.copytree(REPO_ROOT / "deploy" / "halton", county)
    ok(run_cli(["config", "check", str(county)], unit_env))

    # 2. Every party's officer: key, public half beside the county file, signature.
    protocol = county / "protocols" / "halton-asb.yaml"
    comments_before = [ln for ln in protocol.read_text().splitlines() if "#" in ln]
    for party in PARTIES:
        ok(run_cli(["protocol", "keygen", party, "--out-dir", str(keys)], unit_env))
        (county / "officers" / party).mkdir(parents=True)
        for pub in (keys / party).glob("*.pub.pem"):
            shutil.copy(pub, county / "officers" / party / pub.name)
        [key] = (keys / party).glob("*.key.pem")
        ok(run_cli(["protocol", "sign", str(protocol), "--key", str(key)], unit_env))
    # The officer keys are pinned (services/core/crypto/officer_trust.py): the file beside the
    # county, its fingerprint in county.yaml, which the officers approve.
    out = ok(run_cli(["officer-keys", "init", str(county / "officer-keys.yaml"), "--officers-dir",
                      str(county / "officers"), "--config-dir", str(county)], unit_env))
    pin = out.strip().splitlines()[-1].split("officer_keys_sha256: ", 1)[1]
    with (county / "county.yaml").open("a") as f:
        f.write(f"\nofficer_keys_sha256: {pin}\n")
    signed_text = protocol.read_text()
    assert all(line in signed_text for line in comments_before), "sign dropped comments"
    assert "Designated Officer, Cheshire Constabulary" in signed_text  # from county.yaml
    checked = ok(run_cli(["config", "check", str(county)], unit_env))
    assert "not yet signed" not in checked

    # 3. The hub, in production mode; the CLI then needs nothing but the env file up wrote.
    hub = Running(["up"], unit_env)
    try:
        hub.wait_for(lambda line: line.startswith("ready in"), timeout=240)
        env_file = state / "s115hub.env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert state.stat().st_mode & 0o777 == 0o700
        cli = clean_env(S115HUB_ENV_FILE=str(env_file))

        # Retention from the protocols, as deploy/README.md says after the first start.
        ok(run_cli(["retention", "apply", "--yes"], cli, timeout=180))

        # 4. Credentials, only for parties in county.yaml.
        lines = ok(run_cli(["partner", "add", "cheshire-police"], cli)).split()
        api_key = lines[-1]
        ok(run_cli(["group", "token", "issue", "grp-halton"], cli))
        for secret in ("partners.json", "group-tokens.json", "master.key", "audit-key.pem"):
            assert (state / secret).stat().st_mode & 0o777 == 0o600, secret
        master_before = hashlib.sha256((state / "master.key").read_bytes()).hexdigest()

        # 5. Records from Cheshire Police in Halton; one bad timestamp is refused by name.
        areas = AreaIndex.load(REPO_ROOT / "deploy" / "data" / "boundaries")
        lat, lon = areas.wards[HALTON_LEA].point
        ingest = f"http://127.0.0.1:{ports['ingest']}"
        first = [police(n, lat, lon) for n in range(5)]
        answer = publish(ingest, api_key, [*first, {**police(99, lat, lon), "occurred_at": 12345}])
        assert answer["counts"] == {"accepted": 5, "rejected": 1}
        [bad] = answer["rejected"]
        assert bad["errors"][0]["pointer"] == "/occurred_at"
        ids_before = {a["source_id"]: a["hub_record_id"] for a in answer["accepted"]}

        assert "LIVE" in ok(run_cli(["protocol", "status"], cli))
        got = received(cli, "grp-halton", 5)
        assert {r["hub_record_id"] for r in got} == set(ids_before.values())

        # 6. Restart everything the hub runs (SIGTERM, as systemd stops it), then start again.
        rc, left = hub.stop_with(signal.SIGTERM)
        assert rc == 0
        assert not left
        hub = Running(["up"], unit_env)
        hub.wait_for(lambda line: line.startswith("ready in"), timeout=240)

        # Nothing lost: the same keys, the same API key, the same record ids, every record.
        assert hashlib.sha256((state / "master.key").read_bytes()).hexdigest() == master_before
        again = publish(ingest, api_key, [first[0], *(police(n, lat, lon) for n in range(5, 8))])
        assert again["counts"]["accepted"] == 4
        assert again["accepted"][0]["hub_record_id"] == ids_before["HAL-0000"]
        got = received(cli, "grp-halton", 8)
        assert len({r["hub_record_id"] for r in got}) == 8
        assert set(ids_before.values()) <= {r["hub_record_id"] for r in got}

        # 7. Checked and reported on.
        assert ok(run_cli(["audit", "verify"], cli)).startswith("OK ")
        ok(run_cli(["status"], cli))
        report = tmp_path / "reconcile.csv"
        ok(run_cli(["reconcile", "cheshire-police", "--from", "2020-01-01", "--to", "2100-01-01",
                    "--csv", str(report)], cli, timeout=180))
        rows = list(csv.DictReader(report.read_text(encoding="utf-8").splitlines()))
        outcome = {(r["source_id"], r["outcome"]) for r in rows}
        # Every record sent is accounted for by the partner's own reference: eight delivered to
        # the Halton group (HAL-0000 once, although sent twice), the bad timestamp rejected.
        delivered = {sid for sid, o in outcome if o == "delivered"}
        assert delivered == {f"HAL-{n:04d}" for n in range(8)}, rows
        assert all("grp-halton" in r["delivered_to"] for r in rows if r["outcome"] == "delivered")
        assert [r["outcome"] for r in rows if r["source_id"] == "HAL-0099"] == ["rejected"], rows
        rc, left = hub.stop_with(signal.SIGTERM)
        assert rc == 0
        assert not left
    finally:
        if hub.proc.poll() is None:
            hub.kill()
    assert (state / "master.key").exists(), "up deleted its state"
