"""Every role of the shipped ACL against every topic family: read and write, retained and not.

The broker is a private Mosquitto running deploy/mosquitto/secure.conf with deploy/mosquitto/acl.
The tables below say what each role may do; anything else must be refused. The attack that
made this file: a device, and the read-only `public` account, published retained messages under
the open feeds (`streetsense/v1/feeds/<their id>/status`) through the device patterns.
"""

from __future__ import annotations

from collections.abc import Iterator

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

pytestmark = pytest.mark.skipif(not HAVE_MOSQUITTO, reason="no Mosquitto")

ROLES = ("dev-a", "ingest-1", "feeds", "operator", "public")
OTHER_DEVICE = "dev-b"
DEVICE_CHANNELS = ("parking", "traffic", "light", "status", "config-reply", "ack", "config")


def families(role: str) -> dict[str, str]:
    """Return every topic family, named, as seen from one role (its own name where one fits)."""
    topics = {}
    for channel in DEVICE_CHANNELS:
        topics[f"own {channel}"] = f"{PREFIX}/centre/{role}/{channel}"
        topics[f"other's {channel}"] = f"{PREFIX}/centre/{OTHER_DEVICE}/{channel}"
    topics |= {
        "own id under feeds": f"{PREFIX}/feeds/{role}/status",
        "own id under feeds, data": f"{PREFIX}/feeds/{role}/parking",
        "feed": f"{PREFIX}/feeds/parking/lot-1",
        "outside the prefix": "elsewhere/topic",
        "odd level count": f"{PREFIX}/centre/{role}",
    }
    return topics


DEVICE_WRITES = {f"own {c}" for c in ("parking", "traffic", "light", "status", "config-reply")}
WRITES: dict[str, set[str]] = {
    "dev-a": DEVICE_WRITES,
    "ingest-1": {"other's ack"},  # confirmations, to devices (never under its own name)
    "feeds": {"feed"},
    "operator": {"other's config"},
    "public": set(),
}
READS: dict[str, set[str]] = {
    "dev-a": {"own ack", "own config"},
    # everything under the prefix but topics with its own name
    "ingest-1": {f"other's {channel}" for channel in DEVICE_CHANNELS} | {"feed"},
    "feeds": set(),
    "operator": {"other's config-reply", "other's status"},
    "public": {"feed"},
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    started = start_secure_broker(tmp_path_factory.mktemp("acl-broker"), (*ROLES, OTHER_DEVICE))
    yield started
    started.stop()


@pytest.fixture
def opened(broker: SecureBroker) -> Iterator[dict[str, Session]]:
    sessions: dict[str, Session] = {}
    yield sessions
    monitor = sessions.get(MONITOR)
    if monitor is not None:
        # forget every retained message this test left, so the next test starts clean
        for role in ROLES:
            for topic in families(role).values():
                monitor.publish(topic, b"", retain=True)
    for session in sessions.values():
        session.close()


def _connect(broker: SecureBroker, sessions: dict[str, Session], user: str) -> Session:
    session = sessions[user] = Session(broker, user, user)
    assert session.connack() == 0
    return session


@pytest.mark.parametrize("role", ROLES)
def test_a_role_publishes_only_where_it_is_granted(
    broker: SecureBroker, opened: dict[str, Session], role: str
) -> None:
    monitor = _connect(broker, opened, MONITOR)
    monitor.subscribe("#")
    client = _connect(broker, opened, role)
    names = families(role)
    for retain in (False, True):
        for topic in names.values():
            client.publish(topic, f"{role} retain={retain}".encode(), retain=retain)
    # Mosquitto forwards a publish to subscribers before its PUBACK: the marker comes last.
    marker = f"{PREFIX}/test/marker"
    monitor.publish(marker, b"")
    seen = seen_before_marker(monitor, marker)
    by_topic = {topic: name for name, topic in names.items()}
    got = sorted(by_topic[topic] for topic in seen)
    assert got == sorted([*WRITES[role], *WRITES[role]])  # each granted topic, live and retained


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reads_only_where_it_is_granted(
    broker: SecureBroker, opened: dict[str, Session], role: str
) -> None:
    monitor = _connect(broker, opened, MONITOR)
    names = families(role)
    for topic in names.values():
        monitor.publish(topic, b"retained", retain=True)
    client = _connect(broker, opened, role)
    client.subscribe(f"{PREFIX}/#")  # Mosquitto grants it and checks `read` per delivery
    client.subscribe("elsewhere/#")
    for topic in names.values():
        monitor.publish(topic, b"live")
    # The broker queues the monitor's deliveries before the PUBACK of anything published after
    # them, refused or not: once the client's own publish is acknowledged, all have arrived.
    client.publish(f"{PREFIX}/test/barrier", b"")
    by_topic = {topic: name for name, topic in names.items()}
    got = sorted((by_topic[topic], payload.decode()) for topic, payload in client.received())
    expected = sorted((name, kind) for name in READS[role] for kind in ("retained", "live"))
    assert got == expected


def test_anonymous_clients_are_refused(broker: SecureBroker) -> None:
    anonymous = Session(broker, None, "anonymous")
    try:
        assert anonymous.connack().is_failure
    finally:
        anonymous.close()
