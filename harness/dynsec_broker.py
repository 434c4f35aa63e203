"""A private Mosquitto with the dynamic security plugin, set up as deploy/mosquitto/dynsec.conf
says (`mosquitto_ctrl dynsec init`, then `streetsense fleet broker init`'s code)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from fleet.broker_setup import ServiceClient, prepare
from fleet.dynsec import Acl, DynSec, reads
from fleet.link import FleetLink
from harness.services import REPO, Mosquitto
from streetsense.broker import broker_target
from streetsense.config import MqttSettings, Settings, with_overrides
from streetsense.fleet_protocol import FleetTopics
from streetsense.topics import Topics

SAMPLE = REPO / "deploy" / "mosquitto" / "dynsec.conf"
PLUGIN = next(iter(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")), "")
HAVE_DYNSEC = bool(PLUGIN and shutil.which("mosquitto") and shutil.which("mosquitto_ctrl"))
ADMIN = "admin"
MONITOR = "monitor"  # tests only: reads and writes everything, to see what got through
TLS_LINES = ("cafile", "certfile", "keyfile", "tls_version", "require_certificate")


class DynsecBroker(Mosquitto):
    """A private broker with dynamic security; services' passwords are in `passwords`."""

    def __init__(
        self, workdir: Path, topics: Topics, fleet_topics: FleetTopics, tls: bool = False
    ) -> None:
        super().__init__(workdir)
        self.topics = topics
        self.fleet_topics = fleet_topics
        self.tls = tls
        self.passwords: dict[str, str] = {}

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        if self.tls:
            return f"mqtts://localhost:{self.port}"
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The test CA (with tls)."""
        return self.workdir / "ca.crt"

    def password_file(self, user: str) -> Path:
        """Return a file (mode 600) holding a user's password."""
        path = self.workdir / f"{user}.password"
        path.write_text(self.passwords[user] + "\n")
        path.chmod(0o600)
        return path

    def settings(self, settings: Settings, user: str) -> Settings:
        """Return settings that connect to this broker as `user` (a service client)."""
        mqtt = {
            "url": self.url,
            "topic_prefix": self.topics.prefix,
            "username": user,
            "password_file": str(self.password_file(user)),
        }
        if self.tls:
            mqtt["ca_file"] = str(self.ca_file)
        return with_overrides(settings, mqtt=mqtt, fleet={"topic_prefix": self.fleet_topics.root})

    def admin(self) -> FleetLink:
        """Return a connection as the dynamic security admin."""
        target = broker_target(
            MqttSettings(
                url=self.url,
                username=ADMIN,
                password_file=str(self.password_file(ADMIN)),
                ca_file=str(self.ca_file) if self.tls else "",
            ),
        )
        return FleetLink(target, [], "test-admin").start()

    def write_config(self) -> None:
        """Write deploy/mosquitto/dynsec.conf with this instance's port, files and log."""
        replacements = {
            "listener": f"listener {self.port} 127.0.0.1",
            "cafile": f"cafile {self.workdir}/ca.crt",
            "certfile": f"certfile {self.workdir}/server.crt",
            "keyfile": f"keyfile {self.workdir}/server.key",
            "plugin": f"plugin {PLUGIN}",
            "plugin_opt_config_file": (
                f"plugin_opt_config_file {self.workdir}/dynamic-security.json"
            ),
            "persistence_location": f"persistence_location {self.workdir}/",
        }
        lines = []
        for line in SAMPLE.read_text().splitlines():
            key = line.split(" ", 1)[0]
            if key in TLS_LINES and not self.tls:
                continue
            lines.append(replacements.get(key, line))
        lines += [
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # as root it would drop to a user who cannot read tmp
        self.config_path.write_text("\n".join(lines) + "\n")


def start_dynsec_broker(
    workdir: Path,
    topics: Topics,
    fleet_topics: FleetTopics,
    services: dict[str, str],
    *,
    tls: bool = False,
) -> DynsecBroker:
    """Initialise dynamic security, start the broker, and make the service clients
    (`services`: user name -> role) plus the tests' monitor."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = DynsecBroker(workdir, topics, fleet_topics, tls)
    broker.passwords = {name: uuid.uuid4().hex for name in (ADMIN, MONITOR, *services)}
    if tls:
        subprocess.run(
            [str(REPO / "deploy" / "mosquitto" / "make-certs"), str(workdir)],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            "mosquitto_ctrl",
            "dynsec",
            "init",
            str(workdir / "dynamic-security.json"),
            ADMIN,
            broker.passwords[ADMIN],
        ],
        check=True,
        capture_output=True,
    )
    broker.start()
    link = broker.admin()
    try:
        dynsec = DynSec(link)
        clients = [
            ServiceClient(name, role, broker.passwords[name]) for name, role in services.items()
        ]
        prepare(dynsec, topics, fleet_topics, clients)
        everything = [Acl("publishClientSend", "#"), *reads("#", pattern=True)]
        dynsec.replace_role("test-monitor", everything)
        dynsec.replace_client(MONITOR, broker.passwords[MONITOR], ["test-monitor"])
    finally:
        link.stop()
    return broker


class RawClient:
    """A plain paho MQTT 5 client for abuse tests: what the broker answers, what arrives."""

    def __init__(
        self, broker: DynsecBroker, user: str | None, password: str | None, client_id: str = ""
    ) -> None:
        import queue
        import threading

        import paho.mqtt.client as mqtt

        self.connack: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.pubacks: dict[int, Any] = {}
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self._published = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"raw-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if broker.tls:
            import ssl

            self.client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connack.put(code)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subacks.put(codes)
        self.client.on_publish = self._on_publish
        host = "localhost" if broker.tls else "127.0.0.1"
        self.client.connect_async(host, broker.port)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._published:
            self.pubacks[mid] = reason
            self._published.notify_all()

    def connected(self, timeout: float = 10.0) -> bool:
        """Return whether the broker accepted the connection."""
        return not self.connack.get(timeout=timeout).is_failure

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> Any:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self._published:
            self._published.wait_for(lambda: info.mid in self.pubacks, timeout=10)
            return self.pubacks[info.mid]

    def subscribe(self, topic: str) -> Any:
        """Subscribe at QoS 1 and return the broker's granted code."""
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)[0]

    def received(self, wait_s: float = 0.0) -> list[tuple[str, bytes]]:
        """Return what arrived (waiting up to `wait_s` for a first message)."""
        import queue

        found = []
        try:
            found.append(
                self.messages.get(timeout=wait_s) if wait_s else self.messages.get_nowait()
            )
            while True:
                found.append(self.messages.get_nowait())
        except queue.Empty:
            return found

    def close(self) -> None:
        """Disconnect."""
        from harness.mqtt import close_client

        close_client(self.client)
