"""A private Mosquitto running deploy/mosquitto/secure.conf + acl, and TLS sessions on it."""

from __future__ import annotations

import os
import queue
import shutil
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from harness.mqtt import close_client
from harness.services import REPO, free_port, wait_port

DEPLOY = REPO / "deploy" / "mosquitto"
PREFIX = "streetsense/v1"
# The test-only superuser: reads and writes everything, so a test can tell what got through.
MONITOR = "monitor"
HAVE_MOSQUITTO = bool(shutil.which("mosquitto_passwd"))


@dataclass
class SecureBroker:
    """A private Mosquitto running the secure sample on a free port."""

    port: int
    ca_file: Path
    passwords: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop the broker."""
        self.process.terminate()
        self.process.wait(10)


def _write_config(workdir: Path, port: int) -> Path:
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "cafile": f"cafile {workdir}/ca.crt",
        "certfile": f"certfile {workdir}/server.crt",
        "keyfile": f"keyfile {workdir}/server.key",
        "password_file": f"password_file {workdir}/passwd",
        "acl_file": f"acl_file {workdir}/acl",
        "persistence_location": f"persistence_location {workdir}/",
    }
    lines = [
        replacements.get(line.split(" ", 1)[0], line)
        for line in (DEPLOY / "secure.conf").read_text().splitlines()
    ]
    acl = (DEPLOY / "acl").read_text() + f"\nuser {MONITOR}\ntopic readwrite #\n"
    (workdir / "acl").write_text(acl)
    lines += [f"log_dest file {workdir}/mosquitto.log", "log_type all"]
    if os.geteuid() == 0:
        # as root Mosquitto would drop to its own user, who cannot enter pytest's private tmp
        lines.append("user root")
    config = workdir / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def start_secure_broker(workdir: Path, users: Iterable[str]) -> SecureBroker:
    """Make certificates and passwords for these users (and the monitor), start the broker."""
    subprocess.run([str(DEPLOY / "make-certs"), str(workdir)], check=True, capture_output=True)
    passwords = {user: uuid.uuid4().hex for user in {*users, MONITOR}}
    (workdir / "passwd").touch()
    for user, password in passwords.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(workdir / "passwd"), user, password], check=True
        )
    port = free_port()
    config = _write_config(workdir, port)
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port("127.0.0.1", port)
    except TimeoutError:
        process.kill()
        process.wait(10)
        raise
    return SecureBroker(port, workdir / "ca.crt", passwords, workdir, process)


class Session:
    """A paho MQTT 5 client over TLS that records what it is told."""

    def __init__(
        self,
        broker: SecureBroker,
        user: str | None,
        client_id: str,
        password: str | None = None,
        port: int | None = None,
    ) -> None:
        self.connected: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()
        self.subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        if user is not None:
            self.client.username_pw_set(user, password or broker.passwords.get(user))
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connected.put(code)
        self.client.on_disconnect = lambda *_args: self.disconnected.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subscribed.put(codes)
        # connect_async before loop_start: the other order leaks paho's wake-up socket pair
        self.client.connect_async("localhost", port or broker.port)
        self.client.loop_start()

    def connack(self) -> ReasonCode:
        """Return the broker's answer to the connection."""
        return self.connected.get(timeout=10)

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        """Subscribe at QoS 1; return the broker's granted codes."""
        self.client.subscribe(topic_filter, qos=1)
        return self.subscribed.get(timeout=10)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK (granted or not)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def received(self) -> list[tuple[str, bytes]]:
        """Return and forget what was delivered so far."""
        found = []
        while not self.messages.empty():
            found.append(self.messages.get_nowait())
        return found

    def close(self) -> None:
        """Disconnect."""
        close_client(self.client)


def seen_before_marker(monitor: Session, marker_topic: str) -> list[str]:
    """Return the topics the monitor received up to (not including) the marker message."""
    seen: list[str] = []
    while True:
        topic, _ = monitor.messages.get(timeout=10)
        if topic == marker_topic:
            return seen
        seen.append(topic)
