"""`streetsense doctor` against the real services, a closed port and a broker that drops."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from harness.mqtt import close_client
from harness.scratch import empty_database
from harness.services import Mosquitto, free_port

REPO = Path(__file__).resolve().parents[2]


def doctor(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `streetsense doctor` with only these STREETSENSE_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    clean["PYTHONPATH"] = str(REPO)
    clean.update({f"STREETSENSE_{key.upper()}": value for key, value in env.items()})
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "doctor"],
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_doctor_passes_on_the_real_services(tmp_path: Path, database_url: str, broker: str) -> None:
    result = doctor(tmp_path, database_url=database_url, mqtt_url=broker)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[  ok] schema: version" in result.stdout
    assert "[  ok] broker version: mosquitto version 2." in result.stdout
    assert "[  ok] shared subscription" in result.stdout
    assert "0 problem(s)" in result.stdout


def test_doctor_fails_on_closed_ports_and_says_what_to_fix(tmp_path: Path) -> None:
    closed = free_port()
    result = doctor(
        tmp_path,
        database_url=f"postgresql://postgres@127.0.0.1:{closed}/postgres",
        mqtt_url=f"mqtt://127.0.0.1:{closed}",
        database_connect_timeout_s="2",
    )
    assert result.returncode == 1
    assert "[FAIL] database" in result.stdout
    assert "[FAIL] broker" in result.stdout
    assert result.stdout.count("fix:") >= 2


@pytest.fixture(name="empty_database")
def _empty_database(admin_url: str) -> Iterator[str]:
    with empty_database(admin_url, "ss_doctor") as url:
        yield url


def test_doctor_asks_for_a_migration_and_for_mqtt5_with_shared_groups(
    tmp_path: Path, empty_database: str, broker: str
) -> None:
    result = doctor(tmp_path, database_url=empty_database, mqtt_url=broker, mqtt_protocol="3.1.1")
    assert result.returncode == 1
    assert "[FAIL] schema: version 0" in result.stdout
    assert "streetsense db migrate" in result.stdout
    assert "[FAIL] shared subscription" in result.stdout


def _make_broker_drop(url_port: int) -> None:
    """Fill an offline persistent session's one-message queue, then wait for the counter."""
    client_id = f"slow-{uuid.uuid4().hex[:6]}"
    offline = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
    )
    offline.connect("127.0.0.1", url_port)
    offline.subscribe("drops/#", qos=1)
    offline.loop(2.0)
    offline.disconnect()
    offline.loop(1.0)
    dropped = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"w-{client_id}")
    watcher.on_message = lambda _c, _u, m: dropped.set() if float(m.payload) > 0 else None
    subscribed = threading.Event()
    watcher.on_connect = lambda c, *_args: c.subscribe("$SYS/broker/publish/messages/dropped")
    watcher.on_subscribe = lambda *_args: subscribed.set()
    # connect_async before loop_start: the other order leaks paho's wake-up socket pair
    watcher.connect_async("127.0.0.1", url_port)
    watcher.loop_start()
    assert subscribed.wait(10)
    for n in range(20):
        watcher.publish(f"drops/{n}", b"x", qos=1).wait_for_publish(10)
    try:
        assert dropped.wait(30), "the broker never reported a drop"
    finally:
        close_client(watcher)


def test_doctor_reports_a_broker_that_dropped_messages(tmp_path: Path, database_url: str) -> None:
    small = Mosquitto(tmp_path / "broker", extra_config="max_queued_messages 1\nsys_interval 1")
    small.start()
    try:
        _make_broker_drop(small.port)
        result = doctor(tmp_path, database_url=database_url, mqtt_url=small.url)
    finally:
        small.stop()
    assert result.returncode == 1
    assert "[FAIL] broker drops" in result.stdout
    assert "max_queued_messages" in result.stdout
