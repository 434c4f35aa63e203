"""deploy/mosquitto/secure.conf + acl against the real Mosquitto, with certificates made now."""

from __future__ import annotations

import os
import queue
import shutil
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.mqtt import close_client
from tests.support.services import REPO, free_port, wait_port

DEPLOY = REPO / "deploy" / "mosquitto"
USERS = ("dev-a", "dev-b", "ingest-1", "ingest-2", "feeds", "monitor")
PREFIX = "streetsense/v1"
pytestmark = pytest.mark.skipif(not shutil.which("mosquitto_passwd"), reason="no Mosquitto")


@dataclass(frozen=True)
class SecureBroker:
    """A private Mosquitto running the secure sample on a free port."""

    port: int
    ca_file: Path
    passwords: dict[str, str]


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
    # the monitor sees every message, so a test can tell what the broker let through
    acl = (DEPLOY / "acl").read_text() + "\nuser monitor\ntopic read #\n"
    (workdir / "acl").write_text(acl)
    lines += [f"log_dest file {workdir}/mosquitto.log", "log_type all"]
    if os.geteuid() == 0:
        # as root Mosquitto would drop to its own user, who cannot enter pytest's private tmp
        lines.append("user root")
    config = workdir / "mosquitto.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    workdir = tmp_path_factory.mktemp("secure-mosquitto")
    subprocess.run([str(DEPLOY / "make-certs"), str(workdir)], check=True, capture_output=True)
    passwords = {user: uuid.uuid4().hex for user in USERS}
    (workdir / "passwd").touch()
    for user, password in passwords.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(workdir / "passwd"), user, password], check=True
        )
    port = free_port()
    config = _write_config(workdir, port)
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port)
        yield SecureBroker(port, workdir / "ca.crt", passwords)
    finally:
        process.terminate()
        process.wait(10)


class Session:
    """A paho MQTT 5 client over TLS that records what it is told."""

    def __init__(self, broker: SecureBroker, user: str | None, client_id: str, **kw: str) -> None:
        self.connected: queue.Queue[ReasonCode] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()
        self.subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(ca_certs=str(broker.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        if user is not None:
            self.client.username_pw_set(user, kw.get("password", broker.passwords.get(user)))
        self.client.on_connect = lambda _c, _u, _f, code, _p: self.connected.put(code)
        self.client.on_disconnect = lambda *_args: self.disconnected.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.subscribed.put(codes)
        # connect_async before loop_start: the other order leaks paho's wake-up socket pair
        self.client.connect_async("localhost", broker.port)
        self.client.loop_start()

    def connack(self) -> ReasonCode:
        """Return the broker's answer to the connection."""
        return self.connected.get(timeout=10)

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        """Subscribe at QoS 1; return the broker's granted codes."""
        self.client.subscribe(topic_filter, qos=1)
        return self.subscribed.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        close_client(self.client)


@pytest.fixture
def sessions(secure_broker: SecureBroker) -> Iterator[list[Session]]:
    opened: list[Session] = []
    yield opened
    for session in opened:
        session.close()


def _open(sessions: list[Session], broker: SecureBroker, user: str | None, **kw: str) -> Session:
    client_id = kw.pop("client_id", user or "anonymous")
    session = Session(broker, user, client_id, **kw)
    sessions.append(session)
    return session


def _monitor(sessions: list[Session], broker: SecureBroker) -> Session:
    monitor = _open(sessions, broker, "monitor")
    assert monitor.connack() == 0
    assert monitor.subscribe(f"{PREFIX}/#")[0].value <= 1
    return monitor


def _seen_before_marker(monitor: Session, marker_topic: str) -> list[str]:
    """Return the topics the monitor received up to (not including) the marker message."""
    seen = []
    while True:
        topic, _ = monitor.messages.get(timeout=10)
        if topic == marker_topic:
            return seen
        seen.append(topic)


def test_anonymous_and_wrong_passwords_are_refused(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    anonymous = _open(sessions, secure_broker, None)
    assert anonymous.connack().is_failure
    wrong = _open(sessions, secure_broker, "dev-a", password="guess")
    assert wrong.connack().is_failure
    right = _open(sessions, secure_broker, "dev-a")
    assert right.connack() == 0


def test_plain_text_connections_are_refused(secure_broker: SecureBroker) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain")
    client.username_pw_set("dev-a", secure_broker.passwords["dev-a"])
    client.connect("127.0.0.1", secure_broker.port)
    # Mosquitto drops a non-TLS handshake on a TLS listener: the connection never completes
    code = client.loop(timeout=2.0)
    code = client.loop(timeout=2.0) if code == mqtt.MQTT_ERR_SUCCESS else code
    assert code != mqtt.MQTT_ERR_SUCCESS
    assert not client.is_connected()


def test_a_device_publishes_only_under_its_own_id(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    monitor = _monitor(sessions, secure_broker)
    device_b = _open(sessions, secure_broker, "dev-b")
    assert device_b.connack() == 0
    forged = f"{PREFIX}/centre/dev-a/parking"
    own = f"{PREFIX}/centre/dev-b/parking"
    device_b.publish(forged, b"[]")
    device_b.publish(own, b"[]")
    assert _seen_before_marker(monitor, own) == []


def test_reusing_another_devices_client_id_neither_takes_over_nor_grants_its_topics(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    monitor = _monitor(sessions, secure_broker)
    device_a = _open(sessions, secure_broker, "dev-a")
    assert device_a.connack() == 0
    impostor = _open(sessions, secure_broker, "dev-b", client_id="dev-a")
    assert impostor.connack() == 0  # connected, but as dev-b: its user name is its client id
    impostor.publish(f"{PREFIX}/centre/dev-a/parking", b"[]")
    marker = f"{PREFIX}/centre/dev-a/status"
    device_a.publish(marker, b"[]")
    assert _seen_before_marker(monitor, marker) == []
    assert not device_a.disconnected.is_set()
    assert device_a.client.is_connected()


def test_a_device_reads_only_its_own_confirmations(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    device_b = _open(sessions, secure_broker, "dev-b")
    assert device_b.connack() == 0
    # Mosquitto grants every subscription and applies `read` rules to each delivery
    device_b.subscribe(f"{PREFIX}/centre/+/ack")
    ingest = _open(sessions, secure_broker, "ingest-1")
    assert ingest.connack() == 0
    ingest.publish(f"{PREFIX}/centre/dev-a/ack", b'{"seq": 1}')
    ingest.publish(f"{PREFIX}/centre/dev-b/ack", b'{"seq": 2}')
    assert device_b.messages.get(timeout=10) == (f"{PREFIX}/centre/dev-b/ack", b'{"seq": 2}')


def test_ingest_subscribes_and_confirms_but_cannot_publish_data(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    monitor = _monitor(sessions, secure_broker)
    ingest = _open(sessions, secure_broker, "ingest-1")
    assert ingest.connack() == 0
    assert not ingest.subscribe(f"$share/ingest/{PREFIX}/#")[0].is_failure
    ack = f"{PREFIX}/centre/dev-a/ack"
    ingest.publish(f"{PREFIX}/centre/dev-a/parking", b"[]")
    ingest.publish(f"{PREFIX}/feeds/parking/lot-1", b"{}")
    ingest.publish(ack, b'{"seq": 1}')
    assert _seen_before_marker(monitor, ack) == []
    # and the shared subscription does deliver device data to it
    device_a = _open(sessions, secure_broker, "dev-a")
    assert device_a.connack() == 0
    device_a.publish(f"{PREFIX}/centre/dev-a/traffic", b"[]")
    received = [ingest.messages.get(timeout=10)[0] for _ in range(2)]
    assert received == [ack, f"{PREFIX}/centre/dev-a/traffic"]  # its own ack, then the data


def test_the_feeds_republisher_publishes_only_feeds(
    secure_broker: SecureBroker, sessions: list[Session]
) -> None:
    monitor = _monitor(sessions, secure_broker)
    feeds = _open(sessions, secure_broker, "feeds")
    assert feeds.connack() == 0
    feed = f"{PREFIX}/feeds/parking/lot-1"
    feeds.publish(f"{PREFIX}/centre/dev-a/parking", b"[]")
    feeds.publish(f"{PREFIX}/centre/dev-a/ack", b'{"seq": 9}')
    feeds.publish(feed, b"{}")
    assert _seen_before_marker(monitor, feed) == []
