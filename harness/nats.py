"""A private NATS cluster (MQTT on JetStream) on its own ports and folders, to kill node by node.

Debian's `nats-server` (2.9): each node serves MQTT 3.1.1 from JetStream, whose streams are
replicated on `replicas` nodes (3: with 2, a node kill stalls acknowledgements ~20 s for want
of a quorum, issue 18's probe). Sessions and retained messages live in JetStream, so a client
that loses its node resumes its session on another. The machine's own NATS (4222) is never
touched.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.mqtt import close_client
from harness.services import free_port, wait_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
HAVE_NATS = Path(NATS_SERVER).is_file()
# Unacknowledged messages NATS sends one MQTT subscription (its default: 1,024). Ingest acks
# after commit, so this bounds a batch, as a receive maximum does on an MQTT 5 broker.
MAX_ACK_PENDING = 16_000
READY_TIMEOUT_S = 60.0
PORT_ATTEMPTS = 3
SESSION_TRY_S = 3.0


class NatsNode:
    """One `nats-server` process of the cluster."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.choose_ports()
        self.config_path = workdir / f"{name}.conf"
        self.log_path = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def choose_ports(self) -> None:
        """Pick free ports for the node's listeners."""
        self.client_port = free_port()
        self.route_port = free_port()
        self.http_port = free_port()
        self.mqtt_port = free_port()

    @property
    def url(self) -> str:
        """The node's MQTT URL."""
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def address(self) -> str:
        """host:port of the node's MQTT listener, as clients log it."""
        return f"127.0.0.1:{self.mqtt_port}"

    def write_config(self, routes: list[int], replicas: int) -> None:
        """Write the node's configuration: its ports, store folder and the cluster's routes."""
        store = self.workdir / f"{self.name}-jetstream"
        lines = [
            f"server_name: {self.name}",
            f"listen: 127.0.0.1:{self.client_port}",
            f"http: 127.0.0.1:{self.http_port}",
            f'jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 2GB }}',
            "cluster {",
            "  name: streetsense-test",
            f"  listen: 127.0.0.1:{self.route_port}",
            "  routes: [" + ", ".join(f"nats-route://127.0.0.1:{p}" for p in routes) + "]",
            "}",
            "mqtt {",
            f"  listen: 127.0.0.1:{self.mqtt_port}",
            f"  stream_replicas: {replicas}",
            f"  max_ack_pending: {MAX_ACK_PENDING}",
            "}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> NatsNode:
        """Start (or restart) the node; the cluster waits for it to be ready."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [NATS_SERVER, "-c", str(self.config_path)], stdout=log, stderr=log
            )
        return self

    def alive(self) -> bool:
        """Tell whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the node, as a power cut would."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the node cleanly."""
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def healthy(self) -> bool:
        """Tell whether the node says JetStream is current (its /healthz)."""
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(json.loads(response.read()).get("status") == "ok")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def log_tail(self, size: int = 1500) -> str:
        """Return the end of the node's log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-size:]


class NatsCluster:
    """Three (or more) NATS nodes with MQTT, replicating every MQTT stream on `replicas`."""

    protocol = "3.1.1"  # NATS speaks MQTT 3.1.1 only: no MQTT 5, no $share

    def __init__(self, workdir: Path, nodes: int = 3, replicas: int = 3) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.replicas = replicas
        self.nodes = [NatsNode(f"n{n + 1}", workdir) for n in range(nodes)]
        routes = [node.route_port for node in self.nodes]
        for node in self.nodes:
            node.write_config(routes, replicas)

    @property
    def url(self) -> str:
        """The multi-host MQTT URL of every node."""
        return "mqtt://" + ",".join(node.address for node in self.nodes)

    def start(self) -> NatsCluster:
        """Start every node that is not running and wait until each serves MQTT.

        A free port can be taken between its choice and the node's bind (by any outgoing
        connection on this machine); a node that exits so is started again on new ports.
        """
        for attempt in range(PORT_ATTEMPTS):
            for node in self.nodes:
                if not node.alive():
                    node.start()
            try:
                for node in self.nodes:
                    self.wait_ready(node)
                return self
            except TimeoutError:
                lost = [n for n in self.nodes if not n.alive() and "address already in use"
                        in n.log_tail()]  # fmt: skip
                if not lost or attempt == PORT_ATTEMPTS - 1:
                    self.stop()  # no half-started cluster left behind
                    raise
            self.stop()
            for node in self.nodes:
                node.choose_ports()
            routes = [node.route_port for node in self.nodes]
            for node in self.nodes:
                node.write_config(routes, self.replicas)
        return self

    def wait_ready(self, node: NatsNode, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the node's MQTT listener accepts a session (JetStream answers through it).

        Raises:
            TimeoutError: it did not in time; the message holds the end of the node's log.
        """
        deadline = time.monotonic() + timeout
        try:
            wait_port("127.0.0.1", node.mqtt_port, timeout)
            # in short tries: a peer that died (a port taken) leaves no quorum, ever
            while not mqtt_session_accepted(node.mqtt_port, SESSION_TRY_S):
                dead = [other for other in self.nodes if not other.alive()]
                if dead:
                    raise TimeoutError(f"{dead[0].name} exited: {dead[0].log_tail(300)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node.name} accepted no MQTT session in {timeout} s")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; {node.name} said: {node.log_tail()}") from None

    def node_at(self, address: str) -> NatsNode:
        """Return the node whose MQTT listener is `address` (host:port, or a URL ending so)."""
        for node in self.nodes:
            if address.rstrip("/").endswith(node.address):
                return node
        raise LookupError(f"no node of the cluster listens on {address}")

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def mqtt_session_accepted(port: int, timeout: float) -> bool:
    """Tell whether a persistent MQTT 3.1.1 session is accepted on the port within `timeout`.

    NATS answers a CONNECT only once JetStream holds the MQTT streams for the account, so an
    accepted session means the node can store and deliver.
    """
    accepted = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"ready-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    client.on_connect = lambda _c, _u, _f, code, _p: accepted.set() if not code.is_failure else None
    client.reconnect_delay_set(1, 1)  # a refusal while JetStream elects leaders: again
    client.connect_async("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        return accepted.wait(timeout)
    finally:
        close_client(client)
