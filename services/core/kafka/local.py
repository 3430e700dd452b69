"""Apache Kafka without Docker: fetch the pinned distribution with Maven, format KRaft storage and
run one combined controller+broker, or a cluster of three, on loopback.

Pure subprocess glue: ``java -cp <libs>/* kafka.Kafka server.properties`` per node, the storage
formatter ``kafka.tools.StorageTool`` before the first start, ``MetadataQuorumCommand`` to name the
active controller. The jars come from ``deploy/kafka-dist/pom.xml`` (Maven Central) into a cache
directory, so a fresh machine needs Java 17+ and Maven once, and only Java afterwards.

The cluster owns the directory it is given: per node ``node-<id>/`` holds ``server.properties``,
the log4j config, ``server.log`` and ``data/`` (the Kafka log directory). Starting again on a
directory that was formatted before keeps the data (persistent mode); ``ports.json`` remembers the
ports so clients configured earlier still reach it.

Extension points for secured deployments (used by the SASL_SSL/ACL tests):

* ``listeners``: the client-facing listeners, each ``Listener(name, protocol)``; every node gets a
  free port for each. The first one is the inter-broker listener unless ``inter_broker`` names
  another. The controller listener is always ``CONTROLLER`` (PLAINTEXT unless overridden through
  ``properties``).
* ``properties``: extra ``server.properties`` entries for every node (they win over the
  defaults). Values may use ``{node_id}``, ``{node_dir}`` and ``{port:<LISTENER>}`` placeholders.
* ``format_args``: extra arguments to ``kafka-storage format`` (e.g. ``--add-scram ...`` to
  bootstrap SCRAM credentials for inter-broker SASL).
* ``ready_listener``: which listener the readiness probe connects to (it waits for the node's
  "Kafka Server started" log line and an open port, so it needs no client credentials).

Over 400 lines because fetching, formatting and running one node or a three-node cluster share the
directory layout and port bookkeeping; it is test and operations tooling, not a service.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.core.kafka.errors import BrokerUnavailable

#: Keep in step with ``kafka.version`` in deploy/kafka-dist/pom.xml.
KAFKA_VERSION = "4.1.1"
REPO_ROOT = Path(__file__).resolve().parents[3]
POM = REPO_ROOT / "deploy" / "kafka-dist" / "pom.xml"
_STARTED_LINE = "Kafka Server started"
_MIN_JAVA = 17


def cache_dir() -> Path:
    """Where the jars live: ``S115HUB_KAFKA_CACHE`` or ``~/.cache/s115hub``."""
    env = os.environ.get("S115HUB_KAFKA_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base if env else base / "s115hub"


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    return cache_dir() / f"kafka-{version}" / "libs"


def java_binary() -> str | None:
    """A ``java`` of version 17 or later (``JAVA_HOME`` first), or None."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    found = shutil.which("java")
    if found:
        candidates.append(found)
    for java in candidates:
        try:
            out = subprocess.run(  # noqa: S603 - a java binary found on PATH/JAVA_HOME
                [java, "-version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = out.stderr + out.stdout
        # 'openjdk version "17.0.15"' or 'java version "1.8.0_392"'
        for token in text.split('"')[1:2]:
            major = token.split(".")[1] if token.startswith("1.") else token.split(".")[0]
            if major.split("-")[0].isdigit() and int(major.split("-")[0]) >= _MIN_JAVA:
                return java
    return None


def distribution_ready(version: str = KAFKA_VERSION) -> bool:
    libs = libs_dir(version)
    return (libs / f"kafka_2.13-{version}.jar").is_file() and (libs / ".complete").is_file()


def fetch_distribution(version: str = KAFKA_VERSION, timeout: float = 900.0) -> Path:
    """Fetch the pinned Kafka jars with Maven (once; later calls return the cache)."""
    libs = libs_dir(version)
    if distribution_ready(version):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerUnavailable("Apache Kafka is not cached and Maven (mvn) is not installed")
    tmp = libs.with_name(f"libs.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={tmp}", f"-Dkafka.version={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True,  # noqa: S603 - fixed command
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BrokerUnavailable(
            f"fetching Apache Kafka {version} took over {timeout:.0f}s") from exc
    if done.returncode != 0 or not (tmp / f"kafka_2.13-{version}.jar").is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise BrokerUnavailable(f"fetching Apache Kafka {version} failed: {' | '.join(tail)}")
    (tmp / ".complete").write_text(version)
    if libs.exists():  # another process finished first; theirs is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        libs.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(libs)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return libs


def available(fetch: bool = True) -> bool:
    """True when Java 17+ is here and the distribution is cached (or, with ``fetch``, can be)."""
    if java_binary() is None:
        return False
    if distribution_ready():
        return True
    return fetch and shutil.which("mvn") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kafka_uuid() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting with
    '-' (the tools would read it as an option)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class Listener:
    name: str
    protocol: str = "PLAINTEXT"


_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = file
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


@dataclass
class KafkaNode:
    node_id: int
    directory: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])


@dataclass
class LocalKafka:
    """One (``nodes=1``) or three (``nodes=3``) combined controller+broker nodes on loopback."""

    directory: Path
    nodes: int = 1
    listeners: Sequence[Listener] = (Listener("PLAINTEXT"),)
    inter_broker: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    format_args: Sequence[str] = ()
    ready_listener: str | None = None
    heap: str = "512m"
    log_level: str = "WARN"
    version: str = KAFKA_VERSION
    node_list: list[KafkaNode] = field(default_factory=list, init=False)

    # -- layout ---------------------------------------------------------------------------------

    def _plan(self) -> None:
        """Ports per node: reuse ports.json when the cluster was created before."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ports_file = self.directory / "ports.json"
        names = [lst.name for lst in self.listeners] + ["CONTROLLER"]
        saved: dict[str, dict[str, int]] = {}
        if ports_file.is_file():
            saved = json.loads(ports_file.read_text())
        self.node_list = []
        for node_id in range(1, self.nodes + 1):
            ports = dict(saved.get(str(node_id), {}))
            for name in names:
                if name not in ports:
                    ports[name] = free_port()
            self.node_list.append(KafkaNode(node_id, self.directory / f"node-{node_id}", ports))
        ports_file.write_text(json.dumps({str(n.node_id): n.ports for n in self.node_list}))

    def bootstrap(self, listener: str | None = None) -> str:
        name = listener or self.listeners[0].name
        return ",".join(f"127.0.0.1:{n.ports[name]}" for n in self.node_list)

    def node(self, node_id: int) -> KafkaNode:
        return self.node_list[node_id - 1]

    def _server_properties(self, node: KafkaNode) -> dict[str, str]:
        rf = str(min(3, self.nodes))
        isr = "2" if self.nodes >= 3 else "1"
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.ports['CONTROLLER']}" for n in self.node_list)
        protocols = {lst.name: lst.protocol for lst in self.listeners}
        protocols["CONTROLLER"] = "PLAINTEXT"
        advertised = ",".join(f"{lst.name}://127.0.0.1:{node.ports[lst.name]}"
                              for lst in self.listeners)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": ",".join(f"{name}://127.0.0.1:{port}"
                                  for name, port in node.ports.items()),
            "advertised.listeners": advertised,
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in protocols.items()),
            "inter.broker.listener.name": self.inter_broker or self.listeners[0].name,
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            # Tests and the single-machine hub join consumer groups often; the default 3 s
            # initial delay only makes every first join slower.
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "auto.create.topics.enable": "true",
        }
        fmt = {"node_id": str(node.node_id), "node_dir": str(node.directory),
               **{f"port:{k}": str(v) for k, v in node.ports.items()}}
        for key, value in self.properties.items():
            props[key] = value.format_map(fmt) if "{" in value else value
        return props

    def _write_configs(self, node: KafkaNode) -> Path:
        node.directory.mkdir(parents=True, exist_ok=True)
        conf = node.directory / "server.properties"
        conf.write_text("".join(f"{k}={v}\n" for k, v in self._server_properties(node).items()))
        (node.directory / "log4j2.properties").write_text(
            _LOG4J.format(log=node.log_path, level=self.log_level))
        return conf

    # -- running --------------------------------------------------------------------------------

    def _java(self) -> list[str]:
        java = java_binary()
        if java is None:
            raise BrokerUnavailable("Apache Kafka needs Java 17 or later; none found")
        libs = fetch_distribution(self.version)
        return [java, "-cp", f"{libs}/*"]

    def _java_opts(self, node: KafkaNode) -> list[str]:
        return [f"-Xms{min_heap(self.heap)}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={node.directory}"]

    def format_storage(self) -> None:
        """Format every node's log directory that has not been formatted yet (one cluster id)."""
        java = self._java()
        id_file = self.directory / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(_kafka_uuid())
        cluster_id = id_file.read_text().strip()
        for node in self.node_list:
            conf = self._write_configs(node)
            if (node.directory / "data" / "meta.properties").is_file():
                continue
            done = subprocess.run(  # noqa: S603 - our java, fixed class, our files
                [*java, *self._java_opts(node), "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(conf), "--ignore-formatted", *self.format_args],
                capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise BrokerUnavailable(
                    f"formatting Kafka storage for node {node.node_id} failed: "
                    f"{(done.stdout + done.stderr).strip()[-400:]}")

    def start(self, timeout: float = 90.0) -> LocalKafka:
        """Format if needed, start every node, wait until each logs that it started."""
        self._plan()
        self.format_storage()
        for node in self.node_list:
            self.start_node(node.node_id, wait=False)
        self.wait_ready(timeout)
        return self

    def start_node(self, node_id: int, wait: bool = True, timeout: float = 90.0) -> None:
        node = self.node(node_id)
        if node.alive:
            return
        conf = self._write_configs(node)
        with contextlib.suppress(OSError):  # a fresh log per run: readiness reads it
            node.log_path.rename(node.directory / "server.log.1")
        java = self._java()
        node.process = subprocess.Popen(  # noqa: S603 - our java, fixed class, our files
            [*java, *self._java_opts(node), "kafka.Kafka", str(conf)],
            stdout=open(node.directory / "stdout.log", "ab"),  # noqa: SIM115 - child owns it
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_ready(timeout, [node])

    def wait_ready(self, timeout: float = 90.0, nodes: list[KafkaNode] | None = None) -> None:
        listener = self.ready_listener or self.listeners[0].name
        pending = list(nodes or self.node_list)
        deadline = time.monotonic() + timeout
        while pending:
            for node in list(pending):
                if not node.alive:
                    raise BrokerUnavailable(
                        f"Kafka node {node.node_id} exited during start-up: {node.log_tail()}")
                if _STARTED_LINE in _read(node.log_path) and _port_open(node.ports[listener]):
                    pending.remove(node)
            if not pending:
                return
            if time.monotonic() > deadline:
                ids = ", ".join(str(n.node_id) for n in pending)
                raise BrokerUnavailable(f"Kafka node(s) {ids} not ready after {timeout:.0f}s: "
                                        f"{pending[0].log_tail()}")
            time.sleep(0.2)

    def kill_node(self, node_id: int) -> None:
        """kill -9: no controlled shutdown, no flush."""
        node = self.node(node_id)
        if node.process and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        self._stop([self.node(node_id)], timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node (controlled shutdown), then SIGKILL what is left at the deadline."""
        self._stop(self.node_list, timeout)

    @staticmethod
    def _stop(nodes: list[KafkaNode], timeout: float) -> None:
        for node in nodes:
            if node.alive and node.process is not None:
                node.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()

    def active_controller(self, timeout: float = 30.0) -> int:
        """The node id of the KRaft quorum leader, from ``kafka-metadata-quorum describe``.

        Each attempt is bounded: during an election the admin client can wait its whole default
        API timeout (a minute) on a controller that just died, so short client timeouts and a
        per-attempt deadline let the next attempt ask the survivors.
        """
        java = self._java()
        client = self.directory / "quorum-client.properties"
        client.write_text("request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n")
        log4j = self.node_list[0].directory / "log4j2.properties"
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            command = [*java, "-Xmx128m", "-XX:TieredStopAtLevel=1",
                       f"-Dlog4j2.configurationFile={log4j}",
                       "org.apache.kafka.tools.MetadataQuorumCommand",
                       "--bootstrap-controller",
                       ",".join(f"127.0.0.1:{n.ports['CONTROLLER']}"
                                for n in self.node_list if n.alive),
                       "--command-config", str(client),
                       "describe", "--status"]
            try:
                done = subprocess.run(  # noqa: S603 - our java, fixed class
                    command, capture_output=True, text=True, check=False,
                    timeout=max(5.0, min(30.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                last = "quorum describe timed out"
                continue
            for line in done.stdout.splitlines():
                if line.startswith("LeaderId:"):
                    leader = int(line.split(":", 1)[1].strip())
                    if leader >= 0 and self.node(leader).alive:
                        return leader
            last = (done.stdout + done.stderr).strip()[-300:]
            time.sleep(0.5)
        raise BrokerUnavailable(f"no active Kafka controller after {timeout:.0f}s: {last}")

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def min_heap(heap: str) -> str:
    """Start small: three nodes on a shared 2-core machine should not reserve their full heap."""
    return "128m" if heap.endswith(("m", "g")) else heap


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m services.core.kafka.local fetch``: fetch the pinned jars (CI, first run)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["fetch"]:
        print("usage: python -m services.core.kafka.local fetch", file=sys.stderr)
        return 2
    try:
        libs = fetch_distribution()
    except BrokerUnavailable as exc:
        print(f"kafka_local: {exc}", file=sys.stderr)
        return 1
    print(f"Apache Kafka {KAFKA_VERSION}: {libs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
