"""The open MQTT feed for apps: many concurrent read-only connections, none that can write.

On the city's broker `public` served one connection at a time (the user name is the client id
there, so a second app logging in disconnected the first). Apps now use the public broker
(deploy/mosquitto/public.conf), which mirrors the feeds from the city's broker over a bridge.
Both brokers run here from the shipped files, on free ports.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.services import free_port, wait_port
from tests.support.secure_broker import (
    DEPLOY,
    HAVE_MOSQUITTO,
    MONITOR,
    PREFIX,
    SecureBroker,
    Session,
    seen_before_marker,
    start_secure_broker,
)

pytestmark = pytest.mark.skipif(not HAVE_MOSQUITTO, reason="no Mosquitto")
APPS = 50
FEED = f"{PREFIX}/feeds/parking/lot-1"


@dataclass
class Brokers:
    city: SecureBroker
    public_port: int


def _public_config(city: SecureBroker, port: int) -> Path:
    work = city.workdir
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "cafile": f"cafile {work}/ca.crt",
        "certfile": f"certfile {work}/server.crt",
        "keyfile": f"keyfile {work}/server.key",
        "acl_file": f"acl_file {work}/public.acl",
        "address": f"address 127.0.0.1:{city.port}",
        "bridge_cafile": f"bridge_cafile {work}/ca.crt",
        "remote_password": f"remote_password {city.passwords['public']}",
    }
    lines = [
        replacements.get(line.split(" ", 1)[0], line)
        for line in (DEPLOY / "public.conf").read_text().splitlines()
    ]
    (work / "public.acl").write_text((DEPLOY / "public.acl").read_text())
    lines += [f"log_dest file {work}/public.log", "log_type all"]
    if os.geteuid() == 0:
        lines.append("user root")
    config = work / "public.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    city = start_secure_broker(tmp_path_factory.mktemp("city"), ("feeds", "public", "dev-a"))
    # a retained feed before the mirror starts: when it arrives there, the bridge is up
    feeds = Session(city, "feeds", "feeds")
    assert feeds.connack() == 0
    feeds.publish(FEED, b'{"free": 10}', retain=True)
    feeds.close()
    port = free_port()
    public = subprocess.Popen(
        ["mosquitto", "-c", str(_public_config(city, port))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port)
        yield Brokers(city, port)
    finally:
        public.terminate()
        public.wait(10)
        city.stop()


@pytest.fixture
def opened() -> Iterator[list[Session]]:
    sessions: list[Session] = []
    yield sessions
    for session in sessions:
        session.close()


def _app(brokers: Brokers, opened: list[Session], client_id: str = "") -> Session:
    app = Session(brokers.city, None, client_id, port=brokers.public_port)
    opened.append(app)
    return app


def test_many_apps_read_the_feeds_at_once(brokers: Brokers, opened: list[Session]) -> None:
    apps = [_app(brokers, opened) for _ in range(APPS)]
    # two apps may even pick the same client id as a device or ingest on the city's broker
    apps += [_app(brokers, opened, "dev-a"), _app(brokers, opened, "ingest-1")]
    for app in apps:
        assert app.connack() == 0
        app.subscribe(f"{PREFIX}/feeds/#")
    for app in apps:
        assert app.messages.get(timeout=20) == (FEED, b'{"free": 10}')  # mirrored, retained
    feeds = Session(brokers.city, "feeds", "feeds")
    opened.append(feeds)
    assert feeds.connack() == 0
    feeds.publish(FEED, b'{"free": 9}', retain=True)
    for app in apps:
        assert app.messages.get(timeout=20) == (FEED, b'{"free": 9}')  # live
    assert not any(app.disconnected.is_set() for app in apps)


def test_apps_write_nothing_on_either_broker(brokers: Brokers, opened: list[Session]) -> None:
    monitor = Session(brokers.city, MONITOR, MONITOR)
    opened.append(monitor)
    assert monitor.connack() == 0
    monitor.subscribe("#")
    watcher = _app(brokers, opened, "watcher")
    assert watcher.connack() == 0
    watcher.subscribe("#")
    app = _app(brokers, opened)
    assert app.connack() == 0
    for topic in (FEED, f"{PREFIX}/centre/dev-a/parking", f"{PREFIX}/centre/dev-a/ack", "x/y"):
        app.publish(topic, b"forged", retain=True)
    # nothing reached the city's broker...
    marker = f"{PREFIX}/test/marker"
    monitor.publish(marker, b"")
    assert [t for t in seen_before_marker(monitor, marker) if t != FEED] == []
    # ...nor another app: the watcher's own publish comes back only after the app's were handled
    watcher.publish(f"{PREFIX}/test/barrier", b"")
    assert [m for m in watcher.received() if m[1] == b"forged"] == []


def test_on_the_city_broker_public_is_one_connection_at_a_time(brokers: Brokers) -> None:
    # why apps use the public broker: the second `public` login takes the first one's place
    first = Session(brokers.city, "public", "any-1")
    second = Session(brokers.city, "public", "any-2")
    try:
        assert first.connack() == 0
        assert second.connack() == 0
        assert first.disconnected.wait(10)
    finally:
        first.close()
        second.close()
