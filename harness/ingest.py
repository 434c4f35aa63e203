"""Helpers for ingest tests: real MQTT publishers, ingest in a thread or a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.mqtt import close_client
from ingest.service import IngestService
from streetsense.config import Settings
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics

REPO = Path(__file__).resolve().parents[1]
SITE = "s1"


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> bool:
    """Poll until predicate() is true; return whether it became true in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def register(database_url: str, devices: list[str], site: str = SITE) -> None:
    """Put devices in the registry tables directly (tests only)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO sites VALUES (%s, %s) ON CONFLICT DO NOTHING", (site, site))
        for device in devices:
            conn.execute(
                "INSERT INTO devices (device_id, site_id, kind) VALUES (%s, %s, 'parking')",
                (device, site),
            )


def count(database_url: str, query: str, *args: Any) -> Any:
    """Return the first column of the first row of a query."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, args).fetchone()
        return row[0] if row else None


@contextmanager
def ingest_thread(settings: Settings, client_id: str = "") -> Iterator[IngestService]:
    """Run the ingest service in a thread of this process; stop it cleanly afterwards."""
    stop = StopSignal()
    # A client id of the test's own: the broker keeps sessions, and they must not mix.
    client_id = client_id or f"ingest-{uuid.uuid4().hex[:8]}"
    service = IngestService(settings, stop, client_id=client_id)
    thread = threading.Thread(target=service.run, name="ingest", daemon=True)
    thread.start()
    assert service.link.connected.wait(10), "ingest did not connect to the broker"
    try:
        yield service
    finally:
        stop.stop()
        thread.join(30)
        assert not thread.is_alive(), "ingest did not stop within 30 s"


def settings_env(settings: Settings) -> dict[str, str]:
    """Return the environment that gives a subprocess these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env.update(
        STREETSENSE_DATABASE_URL=settings.database.url,
        STREETSENSE_DATABASE_TIMESCALE="off",
        STREETSENSE_MQTT_URL=settings.mqtt.url,
        STREETSENSE_MQTT_TOPIC_PREFIX=settings.mqtt.topic_prefix,
        STREETSENSE_MQTT_SHARED_GROUP=settings.mqtt.shared_group,
        STREETSENSE_MQTT_PROTOCOL=settings.mqtt.protocol,
        STREETSENSE_MQTT_KEEPALIVE_S=str(settings.mqtt.keepalive_s),
        STREETSENSE_INGEST_METRICS_PORT=str(settings.ingest.metrics_port),
        STREETSENSE_INGEST_AUTO_REGISTER=str(settings.ingest.auto_register).lower(),
        STREETSENSE_INGEST_DEVICE_RATE_PER_S=str(settings.ingest.device_rate_per_s),
        STREETSENSE_INGEST_DEVICE_BURST=str(settings.ingest.device_burst),
        STREETSENSE_INGEST_RECEIVE_MAXIMUM=str(settings.ingest.receive_maximum),
        STREETSENSE_INGEST_BATCH_MAX_AGE_MS=str(settings.ingest.batch_max_age_ms),
        STREETSENSE_INGEST_LATE_WINDOW_S=str(settings.ingest.late_window_s),
        STREETSENSE_INGEST_PARTITION=settings.ingest.partition,
        STREETSENSE_INGEST_PARTITION_BY=settings.ingest.partition_by,
        PYTHONPATH=str(REPO),
    )
    return env


class IngestProcess:
    """`streetsense ingest` in a process of its own, to kill with SIGKILL or stop with SIGTERM."""

    # Every instance, so a fixture can kill what a failed test left running.
    started: ClassVar[list[IngestProcess]] = []

    def __init__(self, settings: Settings, client_id: str, log_path: Path) -> None:
        self.settings = settings
        self.client_id = client_id
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the latest start's log lines begin
        IngestProcess.started.append(self)

    def start(self) -> IngestProcess:
        """Start the process (again, under the same client id)."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streetsense.cli", "ingest", "--client-id", self.client_id],
                env=settings_env(self.settings),
                stdout=log,
                stderr=log,
                cwd=REPO,
            )
        return self

    def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def wait_ready(self, timeout: float = 20.0) -> bool:
        """Wait until the latest start subscribed (and so handles SIGTERM)."""

        def ready() -> bool:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                return b"subscribed; ingesting" in log.read()

        return wait_until(ready, timeout)

    def terminate(self) -> int:
        """SIGTERM it and return its exit code."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(30)

    def alive(self) -> bool:
        """Tell whether it still runs."""
        return self.process is not None and self.process.poll() is None


def mqtt_client(
    url: str,
    client_id: str = "",
    *,
    v5: bool = True,
    inflight: int = 20,
    on_message: Callable[[Any, Any, mqtt.MQTTMessage], None] | None = None,
) -> mqtt.Client:
    """Return a connected paho client with its network thread running."""
    parts = urlsplit(url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not client_id,
    )
    client.max_inflight_messages_set(inflight)
    if on_message is not None:
        client.on_message = on_message
    if v5 and client_id:
        # A named client keeps its session (and its queue) while away.
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3_600
        client.connect(
            parts.hostname or "127.0.0.1",
            parts.port or 1883,
            clean_start=False,
            properties=properties,
        )
    else:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    return client


def readings(device: str, start_seq: int, n: int, t0: datetime | None = None) -> list[Reading]:
    """Return n occupancy readings of one device with consecutive seqs and times."""
    base = t0 or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    return [
        Reading(device, "occupied", base + timedelta(milliseconds=seq), float(seq % 2), seq=seq)
        for seq in range(start_seq, start_seq + n)
    ]


class Publisher:
    """A plain QoS 1 publisher that waits for each PUBACK."""

    def __init__(self, url: str, topics: Topics) -> None:
        self.topics = topics
        self.client = mqtt_client(url)

    def send(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish one message at QoS 1 and wait for the broker."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def send_readings(self, site: str, device: str, batch: list[Reading]) -> None:
        """Publish readings as one pack on the device's parking topic."""
        topic = self.topics.device(site, device, Channel.PARKING)
        self.send(topic, encode_readings(batch))

    def close(self) -> None:
        """Disconnect."""
        close_client(self.client)


class AckWatcher:
    """Follow the retained end-to-end acks of devices."""

    def __init__(self, url: str, topics: Topics) -> None:
        self.acks: dict[str, int] = {}
        self.client = mqtt_client(url)
        self.client.on_message = self._on_message
        self.client.subscribe(f"{topics.prefix}/+/+/ack", qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[-2]
        self.acks[device] = json.loads(msg.payload)["seq"]

    def close(self) -> None:
        """Disconnect."""
        close_client(self.client)


def stream(
    url: str,
    topics: Topics,
    devices: list[str],
    per_device: int,
    pack: int = 10,
    pause_every: int = 0,
    pause_s: float = 0.0,
    v5: bool = True,
) -> int:
    """Publish per_device readings for each device at QoS 1, packs of `pack`; return the count.

    The broker must acknowledge every message (PUBACK) before this returns.
    """
    client = mqtt_client(url, inflight=200, v5=v5)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    infos = []
    sent = 0
    for start in range(1, per_device + 1, pack):
        for device in devices:
            size = min(pack, per_device - start + 1)
            payload = encode_readings(readings(device, start, size, t0))
            infos.append(client.publish(topics.device(SITE, device, Channel.PARKING), payload, 1))
            sent += size
            if len(infos) >= 20_000:  # paho's packet ids wrap at 65,535
                for info in infos:
                    info.wait_for_publish(60)
                infos.clear()
        if pause_every and (start // pack) % pause_every == 0:
            time.sleep(pause_s)
    for info in infos:
        info.wait_for_publish(60)
    close_client(client)
    return sent


def exactly_once(database_url: str) -> tuple[int, int]:
    """Return (rows, distinct (device, seq)) in readings."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT (device_id, seq)) FROM readings")
        found = row.fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def wait_log(path: Path, text: str, timeout: float = 20.0, occurrences: int = 1) -> bool:
    """Wait until a log file holds `text` at least `occurrences` times."""
    return wait_until(
        lambda: path.exists() and path.read_text(errors="replace").count(text) >= occurrences,
        timeout,
    )


def rss_kib(pid: int) -> int:
    """Return a process's resident memory in KiB (0 when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def ingest_lag(metrics_port: int) -> float:
    """Return ingest's consumer lag (messages) from its Prometheus metrics; -1 if absent."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("streetsense_ingest_lag_messages "):
                return float(line.split()[1])
    return -1.0
