"""The broker really persists: its directory is writable by the user it runs as."""

from __future__ import annotations

import os
import pwd
import subprocess
import threading
from pathlib import Path

import pytest

from harness.ingest import mqtt_client, wait_until
from harness.ingest_services import persistent_mosquitto
from harness.mqtt import close_client
from harness.services import BROKER_CONFIG

DEBIAN_CONFIG = Path("/etc/mosquitto/mosquitto.conf")


def settings_of(path: Path) -> dict[str, str]:
    """Return the first value of each option in a Mosquitto config file."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.strip().partition(" ")
        if key and not key.startswith("#"):
            found.setdefault(key, value.strip())
    return found


def writable_by(user: str, directory: Path) -> bool:
    """Tell whether `user` can create files in directory (checked as that user when root)."""
    if os.geteuid() != 0:
        return os.access(directory, os.W_OK | os.X_OK) and pwd.getpwuid(os.geteuid())[0] == user
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(directory)], check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not DEBIAN_CONFIG.exists(), reason="no Debian Mosquitto on this machine")
def test_debian_broker_persistence_directory_is_writable_by_its_user() -> None:
    options = settings_of(DEBIAN_CONFIG)
    if options.get("persistence") != "true":
        pytest.skip("the machine's broker has persistence off")
    directory = Path(options.get("persistence_location", "/var/lib/mosquitto/"))
    user = options.get("user", "mosquitto")  # Debian's build drops privileges to this user
    assert writable_by(user, directory), (
        f"{directory} is not writable by '{user}': Mosquitto would run without persistence "
        f"and say nothing. Fix: chown {user}: {directory}"
    )


def test_shipped_config_sizes_queues_and_persists() -> None:
    options = settings_of(BROKER_CONFIG)
    assert options["persistence"] == "true"
    assert int(options["autosave_interval"]) > 0
    assert int(options["max_queued_messages"]) >= 1_000_000
    assert int(options["max_queued_bytes"]) >= 1 << 30
    assert int(options["max_inflight_messages"]) >= 1_000


def test_queued_messages_survive_a_clean_broker_restart(tmp_path: Path) -> None:
    broker = persistent_mosquitto(tmp_path / "broker").start()
    try:
        received: list[bytes] = []
        subscriber = mqtt_client(broker.url, "persist-probe")
        subscribed = threading.Event()
        subscriber.on_subscribe = lambda *_args: subscribed.set()
        subscriber.subscribe("probe/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"  # the broker now keeps the session's queue
        close_client(subscriber)
        publisher = mqtt_client(broker.url)
        publisher.publish("probe/x", b"kept", qos=1).wait_for_publish(5)
        close_client(publisher)
        broker.stop()  # SIGTERM: the broker saves its store
        assert (broker.workdir / "mosquitto.db").exists(), "the broker wrote no persistence file"
        broker.start()
        subscriber = mqtt_client(
            broker.url, "persist-probe", on_message=lambda _c, _u, msg: received.append(msg.payload)
        )
        assert wait_until(lambda: received == [b"kept"], 10)
        close_client(subscriber)
    finally:
        broker.stop()
