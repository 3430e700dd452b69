"""The deployment files cannot run here (no Docker engine), so they are parsed and checked against
the code: images, entry points, ports, environment names, metric and topic names.

Over 400 lines because every deployment file is checked against the code in one place."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from services.core.config.settings import REPO_ROOT, Settings
from services.core.kafka.topics import FEED_NAMES, Topics

DEPLOY = REPO_ROOT / "deploy"
SERVICES = {"ingest": "ingest_port", "depersonalise": "depersonalise_port",
            "router": "router_port"}
IMAGE = "s115hub:0.1.0"


def default_port(svc: str) -> int:
    return int(Settings.model_fields[SERVICES[svc]].default)


def valid_env_name(name: str) -> bool:
    if name == "KAFKA_BOOTSTRAP_SERVERS":
        return True
    return (name.startswith("S115HUB_")
            and name.removeprefix("S115HUB_").lower() in Settings.model_fields)


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text()))


def k8s_docs() -> list[dict[str, Any]]:
    return [d for p in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]


def service_of(command: list[str]) -> str | None:
    """``python -m services.<svc>`` -> svc (and the module must exist with a __main__)."""
    if command[:2] == ["python", "-m"] and command[2].startswith("services."):
        svc = command[2].removeprefix("services.")
        assert (REPO_ROOT / "services" / svc / "__main__.py").exists(), command
        return svc
    return None


def known_metric_names() -> set[str]:
    """Every metric family the code registers, with its service prefix."""
    names: set[str] = set()
    pattern = re.compile(r"\.(counter|gauge|histogram)\(\s*\"([a-z0-9_]+)\"")
    for svc in SERVICES:
        for path in (REPO_ROOT / "services" / svc).rglob("*.py"):
            names |= {f"s115hub_{svc}_{m.group(2)}" for m in pattern.finditer(path.read_text())}
        # Registered by shared helpers for whichever service uses them.
        for shared in ("consumer_lag_records", "http_request_duration_seconds",
                       # services/core/kafka/stage_runner.py, for every service's stages
                       "stage_records_total", "stage_dead_letters_total",
                       "stage_batch_duration_seconds", "stage_infra_failures_total"):
            names.add(f"s115hub_{svc}_{shared}")
    return names


# -- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_copies_the_code_exposes_the_settings_ports_and_sets_real_settings() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for src in ("services/", "schemas/", "pyproject.toml", "deploy/data/"):
        assert f"COPY {src}" in text or f" {src} " in text, src
    exposed = {int(p) for line in re.findall(r"^EXPOSE (.+)$", text, re.M) for p in line.split()}
    assert exposed == {default_port(s) for s in SERVICES}
    env_names = re.findall(r"\b(S115HUB_[A-Z0-9_]+)=", text)
    assert env_names, "the image should set its listen address and state dir"
    assert all(valid_env_name(n) for n in env_names), env_names
    # The CLI entry point named in the image must be the console script pyproject declares.
    assert 's115hub = "services.cli.main:main"' in (REPO_ROOT / "pyproject.toml").read_text()
    assert '"s115hub"' in text


# -- compose ---------------------------------------------------------------------------------


def test_compose_runs_kafka_kraft_with_three_brokers_replication_3_and_min_isr_2() -> None:
    svcs = compose()["services"]
    kafka = {n: s for n, s in svcs.items() if str(s.get("image", "")).startswith("apache/kafka")}
    assert len(kafka) == 3
    ids = set()
    for s in kafka.values():
        env = s["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"]
        assert "broker" in env["KAFKA_PROCESS_ROLES"]
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert "ZOOKEEPER" not in " ".join(env)
        ids.add(env["KAFKA_NODE_ID"])
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert {v.split("@")[1].split(":")[0] for v in voters} == set(kafka)
    assert ids == {"1", "2", "3"}


def test_compose_services_use_the_image_entry_points_ports_and_real_settings() -> None:
    doc = compose()
    svcs = doc["services"]
    seen = set()
    for name, s in svcs.items():
        if s.get("image") != IMAGE:
            continue
        env = {**doc["x-hub"]["environment"], **s["environment"]}
        bad = [k for k in env if not valid_env_name(k)]
        assert not bad, f"{name}: environment names that are no setting: {bad}"
        svc = service_of(s["command"])
        if svc is None:
            assert s["command"][0] == "s115hub", s["command"]
            continue
        seen.add(svc)
        port = default_port(svc)
        assert env[f"S115HUB_{svc.upper()}_PORT"] == str(port)
        assert s["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert f"127.0.0.1:{port}/readyz" in " ".join(s["healthcheck"]["test"])
        brokers = env.get("KAFKA_BOOTSTRAP_SERVERS",
                          doc["x-hub"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]).split(",")
        assert {b.split(":")[0] for b in brokers} == {"kafka1", "kafka2", "kafka3"}
        assert env["S115HUB_TOPIC_REPLICATION"] == "3"
    assert seen == set(SERVICES)
    assert (REPO_ROOT / doc["x-hub"]["build"]["context"].replace("../..", ".")).exists()
    assert doc["x-hub"]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_prometheus_scrapes_each_service_on_its_settings_port() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    assert targets == {f"{svc}:{default_port(svc)}" for svc in SERVICES}
    assert all(job["metrics_path"] == "/metrics" for job in prom["scrape_configs"])
    compose_mounts = " ".join(" ".join(s.get("volumes", []))
                              for s in compose()["services"].values())
    assert "../prometheus/prometheus.yml" in compose_mounts
    assert "../grafana/dashboards" in compose_mounts


def _metric_refs(expr: str) -> set[str]:
    refs = set(re.findall(r"\bs115hub_[a-z0-9_]+", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", r) if r.endswith(("_bucket", "_sum", "_count"))
            and "duration" in r else r for r in refs}


def test_grafana_dashboard_and_alerts_only_query_metrics_the_code_exports() -> None:
    known = known_metric_names()
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "s115hub.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs += [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    refs = set().union(*(_metric_refs(e) for e in exprs))
    assert refs, "the dashboard should query hub metrics"
    unknown = sorted(refs - known)
    assert not unknown, f"queried but never exported: {unknown}"
    # The required families are on the dashboard.
    for needed in ("s115hub_ingest_records_in_total", "s115hub_ingest_records_rejected_total",
                   "s115hub_router_deliveries_total", "s115hub_depersonalise_records_blocked_total",
                   "s115hub_router_hotspot_alerts_total"):
        assert needed in refs, needed
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" /
                         "prometheus.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    assert {p["datasource"]["uid"] for p in dash["panels"]} <= uids


# -- Kubernetes ------------------------------------------------------------------------------


def test_k8s_deployments_probe_readyz_and_healthz_on_the_settings_port() -> None:
    deployments = [d for d in k8s_docs() if d["kind"] == "Deployment"]
    seen = set()
    for d in deployments:
        (c,) = d["spec"]["template"]["spec"]["containers"]
        svc = service_of(c["command"])
        assert svc is not None, c["command"]
        seen.add(svc)
        port = default_port(svc)
        assert c["image"] == IMAGE
        assert c["ports"][0]["containerPort"] == port
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        names = [e["name"] for e in c["env"]]
        bad = [n for n in names if not valid_env_name(n)]
        assert not bad, f"{svc}: {bad}"
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env[f"S115HUB_{svc.upper()}_PORT"] == str(port)
        assert Settings.model_validate({"kafka_sasl_mechanism":
                                        env["S115HUB_KAFKA_SASL_MECHANISM"],
                                        "kafka_security_protocol":
                                        env["S115HUB_KAFKA_SECURITY_PROTOCOL"]})
        if svc == "router":
            # The audit chain has one writer: never two routers, not even during an upgrade.
            assert d["spec"]["replicas"] == 1
            assert d["spec"]["strategy"]["type"] == "Recreate"
    assert seen == set(SERVICES)
    svc_ports = {d["metadata"]["name"]: d["spec"]["ports"][0]["port"]
                 for d in k8s_docs() if d["kind"] == "Service"}
    assert svc_ports == {f"s115hub-{s}": default_port(s) for s in SERVICES}
    kust = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert set(kust["resources"]) == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {
        "kustomization.yaml"}


# -- docs ------------------------------------------------------------------------------------


def test_topic_and_setting_names_in_the_deploy_readme_exist_in_the_code() -> None:
    text = (DEPLOY / "README.md").read_text()
    t = Topics("s115")
    real = {t.rejected, t.shared, t.audit, t.audit_facts, t.audit_officer, t.config, *t.raw_all,
            *(t.consumer_group(g)
              for g in ("router", "depersonalise", "audit-chainer", "ingest-inbound"))}
    templated = {"s115.inbound.<partner>": t.inbound("x"), "s115.deliver.<group>": t.deliver("x"),
                 "s115.hotspots.<group>": t.hotspots("x"), "s115.raw.<feed>": t.raw("x")}
    for shown, example in templated.items():
        assert shown in text, shown
        assert shown.split("<")[0] == example.removesuffix("x")
    named = set(re.findall(r"`(s115\.[a-z.]+[a-z])`", text))
    assert named, "the README should name topics"
    assert named <= real, sorted(named - real)
    assert {f"s115.raw.{f}" for f in FEED_NAMES} <= real
    envs = set(re.findall(r"\b(S115HUB_[A-Z0-9_]+)\b", text))
    bad = sorted(n for n in envs if not valid_env_name(n))
    assert not bad, bad
    for group in ("router", "depersonalise", "audit-chainer", "ingest-inbound"):
        assert f"`s115.{group}`" in text, f"consumer group s115.{group} needs an ACL line"
    sources = " ".join(p.read_text() for p in (REPO_ROOT / "services").rglob("*.py"))
    for group in ("router", "depersonalise", "audit-chainer", "ingest-inbound"):
        assert f'CONSUMER_GROUP = "{group}"' in sources, group


@pytest.mark.parametrize("path", sorted(p.relative_to(DEPLOY).as_posix() for p in
                                        [*DEPLOY.glob("compose/*.yml"), *DEPLOY.glob("k8s/*.yaml"),
                                         *DEPLOY.glob("prometheus/*.yml"),
                                         *DEPLOY.glob("grafana/**/*.yml")]))
def test_every_deploy_yaml_parses(path: str) -> None:
    docs = list(yaml.safe_load_all((DEPLOY / path).read_text()))
    assert docs
    assert all(isinstance(d, dict) for d in docs if d is not None)


def test_readme_links_the_security_docs() -> None:
    # The security directory itself is written with the ingest work.
    assert "(security/)" in (DEPLOY / "README.md").read_text()


# -- the secured deployment: what tests/security/test_secured_kafka.py ran ----------------------

CLIENT_PORT, CONTROLLER_PORT = 9093, 9094
SERVICE_USER = {"ingest": "s115-ingest", "depersonalise": "s115-depersonalise",
                "router": "s115-router"}


def _kafka_env_name(prop: str) -> str:
    """apache/kafka's image maps a property to KAFKA_<...>: '_' -> '__', '-' -> '___',
    '.' -> '_'."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def _secured() -> tuple[dict[str, str], dict[str, str]]:
    from tests.security.secured_support import LISTENER_PROTOCOLS, SECURED_BROKER_SETTINGS

    return SECURED_BROKER_SETTINGS, LISTENER_PROTOCOLS


def test_compose_brokers_run_the_settings_the_secured_e2e_test_ran() -> None:
    settings, protocols = _secured()
    svcs = compose()["services"]
    kafka = [s for s in svcs.values() if str(s.get("image", "")).startswith("apache/kafka:4")]
    assert len(kafka) == 3
    for s in kafka:
        env = s["environment"]
        for prop, value in settings.items():
            assert env.get(_kafka_env_name(prop)) == value, prop
        assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == ",".join(
            f"{k}:{v}" for k, v in protocols.items())
        assert env["KAFKA_LISTENERS"] == f"SASL_SSL://:{CLIENT_PORT},CONTROLLER://:{CONTROLLER_PORT}"
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "SASL_SSL"
        assert "PLAINTEXT" not in json.dumps(env)
        assert env["KAFKA_ADVERTISED_LISTENERS"].endswith(f":{CLIENT_PORT}")
        assert "User:admin" in env["KAFKA_SUPER_USERS"].split(";")
        assert "ScramLoginModule" in env[_kafka_env_name(
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config")]
        assert all(f":{CONTROLLER_PORT}" in v
                   for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert "ports" not in s, "brokers are reached inside the compose network only"


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name, s in compose()["services"].items():
        for port in s.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_clients_are_pointed_at_the_sasl_ssl_listener_never_the_controller() -> None:
    doc = compose()
    servers = [doc["x-hub"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]]
    servers += [d["data"]["KAFKA_BOOTSTRAP_SERVERS"] for d in k8s_docs()
                if d["kind"] == "ConfigMap" and "KAFKA_BOOTSTRAP_SERVERS" in d["data"]]
    assert len(servers) == 2
    for value in servers:
        assert {int(b.rsplit(":", 1)[1]) for b in value.split(",")} == {CLIENT_PORT}, value
    env = doc["x-hub"]["environment"]
    assert env["S115HUB_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["S115HUB_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    readme = (DEPLOY / "security" / "README.md").read_text()
    assert f"listeners=SASL_SSL://0.0.0.0:{CLIENT_PORT},CONTROLLER://0.0.0.0:{CONTROLLER_PORT}" \
        in readme


def test_security_readme_shows_the_broker_settings_the_e2e_test_ran() -> None:
    settings, protocols = _secured()
    text = (DEPLOY / "security" / "README.md").read_text()
    block = text.split("```properties", 1)[1].split("```", 1)[0]
    lines = {line.strip() for line in block.splitlines()}
    for prop, value in settings.items():
        assert f"{prop}={value}" in lines, prop
    assert "listener.security.protocol.map=" + ",".join(
        f"{k}:{v}" for k, v in protocols.items()) in lines
    assert "acls.sh" not in text, "the ACLs are applied by `s115hub acl apply`"


def _table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `(User:[a-z0-9<>-]+)`[^|]*\|([^|]*)\|(.*)\|$", line)
        if m:
            rows[m.group(1)] = m.group(3)
    return rows


def test_security_readme_acl_table_is_the_table_acl_apply_installs() -> None:
    """Every grant of services/core/kafka/acls.py (what the e2e test installed and checked) is
    in the README row of its principal: the resource name and the operation."""
    from services.core.kafka.acls import group_grants, partner_grants, service_grants

    rows = _table_rows((DEPLOY / "security" / "README.md").read_text())
    grants = [*service_grants("s115"), *partner_grants("<id>"), *group_grants("<id>")]
    assert {g.principal for g in grants} == set(rows)
    for g in grants:
        row = rows[g.principal]
        assert f"`{g.name}`" in row, (g.principal, g.name)
        if g.operation != "describe":
            assert g.operation.upper() in row, (g.principal, g.operation, g.name)


# -- least secret per pod -------------------------------------------------------------------------

def _k8s_container(svc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (d,) = [d for d in k8s_docs() if d["kind"] == "Deployment"
            and d["metadata"]["name"] == f"s115hub-{svc}"]
    spec = d["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    return spec, c


def _secret_names_k8s(svc: str) -> set[str]:
    spec, c = _k8s_container(svc)
    names = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in c["env"]
              if "secretKeyRef" in e.get("valueFrom", {})}
    return names


def test_each_k8s_pod_mounts_only_the_secrets_its_service_uses() -> None:
    allowed = {
        "ingest": {"s115hub-master-key", "s115hub-kafka-ingest", "s115hub-kafka-ca"},
        "depersonalise": {"s115hub-master-key", "s115hub-kafka-depersonalise",
                          "s115hub-kafka-ca", "s115hub-officer-keys"},
        "router": {"s115hub-kafka-router", "s115hub-kafka-ca", "s115hub-officer-keys",
                   "s115hub-audit-key"},
    }
    claims: dict[str, set[str]] = {}
    for svc, names in allowed.items():
        assert _secret_names_k8s(svc) == names, svc
        spec, c = _k8s_container(svc)
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["S115HUB_KAFKA_SASL_USERNAME"] == SERVICE_USER[svc]
        claims[svc] = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"]
                       if "persistentVolumeClaim" in v}
    # The router never sees personal data: no master key, no data keys, no shared volume.
    _, router = _k8s_container("router")
    names = {e["name"] for e in router["env"]}
    assert not {"S115HUB_MASTER_KEY", "S115HUB_MASTER_KEY_FILE"} & names
    assert claims["router"] == {"s115hub-router-state"}
    assert claims["ingest"] & claims["depersonalise"] == {"s115hub-datakeys"}


def test_each_compose_service_gets_only_the_secrets_it_uses() -> None:
    svcs = compose()["services"]
    expected = {
        "ingest": {"s115hub_master_key", "kafka_ca", "kafka_ingest_password"},
        "depersonalise": {"s115hub_master_key", "kafka_ca", "kafka_depersonalise_password",
                          "officer_keys"},
        "router": {"kafka_ca", "kafka_router_password", "officer_keys", "audit_key"},
    }
    volumes = {}
    for svc, names in expected.items():
        s = svcs[svc]
        assert set(s["secrets"]) == names, svc
        assert s["environment"]["S115HUB_KAFKA_SASL_USERNAME"] == SERVICE_USER[svc]
        volumes[svc] = {v.split(":")[0] for v in s.get("volumes", [])}
    router_env = {**compose()["x-hub"]["environment"], **svcs["router"]["environment"]}
    assert not any("MASTER_KEY" in k for k in router_env)
    assert volumes["router"] == {"router-state"}
    assert volumes["ingest"] & volumes["depersonalise"] == {"datakeys"}
    assert "secrets" not in compose()["x-hub"], "no secret for every service by default"
