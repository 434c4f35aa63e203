"""deploy/mosquitto/secure.conf + acl against the real Mosquitto, with certificates made now."""

from __future__ import annotations

from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from tests.support.secure_broker import (
    HAVE_MOSQUITTO,
    MONITOR,
    PREFIX,
    SecureBroker,
    Session,
    seen_before_marker,
    start_secure_broker,
)

USERS = ("dev-a", "dev-b", "ingest-1", "ingest-2", "feeds")
pytestmark = pytest.mark.skipif(not HAVE_MOSQUITTO, reason="no Mosquitto")


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path_factory.mktemp("secure-mosquitto"), USERS)
    yield broker
    broker.stop()


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
    monitor = _open(sessions, broker, MONITOR)
    assert monitor.connack() == 0
    assert monitor.subscribe(f"{PREFIX}/#")[0].value <= 1
    return monitor


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
    assert seen_before_marker(monitor, own) == []


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
    assert seen_before_marker(monitor, marker) == []
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
    assert seen_before_marker(monitor, ack) == []
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
    assert seen_before_marker(monitor, feed) == []
