"""Test helpers for the edge agent: a peer playing ingest's confirmation role, agent processes."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.mqtt import close_client
from streetsense.confirm import device_key, key_text, sign_ack
from streetsense.readings import datetime_to_epoch, decode_readings
from streetsense.topics import Channel, DeviceTopic, Topics

REPO = Path(__file__).resolve().parents[1]
# The city secret the peer below plays ingest with; agent_config gives agents their keys from it.
PEER_SECRET = bytes(range(32))


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class DeviceLog:
    """What the peer received from one device."""

    counts: dict[int, int] = field(default_factory=dict)  # seq -> times received
    keys: dict[tuple[str, str | None, float], int] = field(default_factory=dict)  # -> seq
    order: list[int] = field(default_factory=list)  # seqs in arrival order
    floor: int | None = None
    acked: int | None = None
    status: list[dict[str, float]] = field(default_factory=list)


class IngestPeer:
    """Subscribe to devices' streams, "store" readings by seq, publish retained acks like ingest.

    `acking=False` stores without confirming; `deaf=True` ignores everything received (an
    ingest that loses messages). `start_seq` tells the peer where a device's numbers begin.
    """

    def __init__(self, broker: str, topics: Topics, *, client_id: str | None = None) -> None:
        self.topics = topics
        self.acking = True
        self.deaf = False
        self.devices: dict[str, DeviceLog] = {}
        self.replies: list[dict[str, Any]] = []
        self.start_seq: dict[str, int] = {}
        self._lock = threading.Lock()
        parts = urlsplit(broker)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"peer-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.2, 1.0)

    def start(self) -> IngestPeer:
        """Connect with a persistent session (queued messages survive our absence)."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self._client.connect(*self._address, keepalive=10, clean_start=False, properties=properties)
        self._client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect, keeping the session on the broker."""
        close_client(self._client)

    def log(self, device: str) -> DeviceLog:
        """Return what was received from a device."""
        with self._lock:
            return self.devices.setdefault(device, DeviceLog())

    def publish_config(self, site: str, device: str, document: Any) -> None:
        """Publish a retained remote configuration document."""
        topic = self.topics.device(site, device, Channel.CONFIG)
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self._client.publish(topic, body, qos=1, retain=True).wait_for_publish(5)

    def ack_now(self, site: str, device: str) -> None:
        """Publish the current contiguous high-water mark of a device."""
        with self._lock:
            self._ack(site, device, self.devices.setdefault(device, DeviceLog()))

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{self.topics.prefix}/+/+/+", qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = self.topics.parse(message.topic)
        if not isinstance(topic, DeviceTopic) or self.deaf:
            return
        if topic.channel is Channel.CONFIG_REPLY:
            self.replies.append(json.loads(message.payload))
            return
        stream = topic.channel.stream
        if stream is None or not message.payload:
            return
        result = decode_readings(bytes(message.payload), topic.device_id, stream)
        with self._lock:
            device = self.devices.setdefault(topic.device_id, DeviceLog())
            if result.seq_floor is not None:
                device.floor = max(device.floor or 0, result.seq_floor)
            if all(r.seq is None for r in result.readings):
                device.status.append({r.kind: r.value for r in result.readings})
                return
            for reading in result.readings:
                assert reading.seq is not None
                device.counts[reading.seq] = device.counts.get(reading.seq, 0) + 1
                device.order.append(reading.seq)
                key = (reading.kind, reading.sub_id, datetime_to_epoch(reading.observed_at))
                device.keys.setdefault(key, reading.seq)
            if self.acking:
                self._ack(topic.site, topic.device_id, device)

    def _ack(self, site: str, device_id: str, device: DeviceLog) -> None:
        if not device.counts:
            return
        high = self.start_seq.get(device_id, min(device.counts)) - 1
        if device.floor is not None:
            high = max(high, device.floor - 1)
        while high + 1 in device.counts:
            high += 1
        if device.acked is not None and high <= device.acked:
            return
        device.acked = high
        topic = self.topics.device(site, device_id, Channel.ACK)
        payload = sign_ack(device_key(PEER_SECRET, device_id), site, device_id, high, 0)
        self._client.publish(topic, payload, qos=1, retain=True)


def agent_config(
    path: Path,
    broker: str,
    topics: Topics,
    device: str = "gw-1",
    *,
    secret: bytes | None = PEER_SECRET,
    key_file: Path | None = None,
    **sections: dict[str, Any],
) -> Path:
    """Write an agent TOML file for a test: fast rates, small timeouts.

    The agent's confirmation key is `key_file`, or else derived from `secret`: the peer's by
    default; real ingest's is `ingest_secret(database_url)`; None gives the agent no key.
    """
    device_section: dict[str, Any] = {"site": "central", "id": device}
    if key_file is not None:
        device_section["confirm_key_file"] = str(key_file)
    elif secret is not None:
        key_file = path.parent / f"{device}.key"
        key_file.write_text(key_text(device_key(secret, device)) + "\n")
        device_section["confirm_key_file"] = str(key_file)
    values: dict[str, dict[str, Any]] = {
        "device": device_section,
        "mqtt": {"url": broker, "topic_prefix": topics.prefix, "keepalive_s": 4,
                 "backoff_min_s": 0.2, "backoff_max_s": 1.0},
        "buffer": {"path": str(path.parent / f"{device}.sqlite"), "resend_timeout_s": 2.0},
        "driver": {"kind": "simulated", "spots": 0, "lanes": 0, "lamp": True, "event_rate": 50.0},
        "status": {"heartbeat_s": 1.0},
    }  # fmt: skip
    return write_toml(path, values, sections)


def write_toml(
    path: Path, values: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]
) -> Path:
    """Write tables of scalar settings as TOML, each table updated by its overrides."""
    for name, extra in overrides.items():
        values.setdefault(name, {}).update(extra)
    lines = []
    for name, table in values.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class AgentProcess:
    """A real `streetsense-edge run` process, killed or stopped like a device."""

    def __init__(self, config: Path, *, file_size_limit: int | None = None) -> None:
        self.config = config
        self.file_size_limit = file_size_limit
        self.log_path = config.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None
        self.state_path = Path(self._toml()["buffer"]["path"] + ".state.json")

    def _toml(self) -> dict[str, Any]:
        import tomllib

        return tomllib.loads(self.config.read_text())

    def start(self) -> AgentProcess:
        """Start the agent and wait for its first state file."""
        if self.state_path.exists():
            self.state_path.unlink()
        limit = self.file_size_limit

        def limit_files() -> None:
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "--log-level", "INFO", "run",
                 "--config", str(self.config)],
                cwd=REPO, stdout=log, stderr=log, preexec_fn=limit_files,  # noqa: PLW1509
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )  # fmt: skip
        wait_for(self.state_path.exists, 15, f"agent state file {self.state_path}")
        return self

    def state(self) -> dict[str, Any]:
        """Return the agent's latest state."""
        for _ in range(20):
            try:
                data: dict[str, Any] = json.loads(self.state_path.read_text())
                return data
            except (OSError, ValueError):
                time.sleep(0.05)
        raise AssertionError(f"cannot read {self.state_path}")

    def kill(self) -> None:
        """SIGKILL the agent, as a power cut would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """Stop the agent cleanly (SIGTERM)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        """Return what the agent logged."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def report(name: str, **figures: Any) -> None:
    """Print a fault test's figures (shown with pytest -s, and in the -ra summary on failure)."""
    shown = ", ".join(f"{key}={value}" for key, value in figures.items())
    sys.stdout.write(f"\n[{name}] {shown}\n")


def missing_and_duplicates(log: DeviceLog, first: int, last: int) -> tuple[list[int], int]:
    """Return seqs in first..last never received, and how many distinct readings came twice
    under different seqs (a reading buffered twice)."""
    missing = [seq for seq in range(first, last + 1) if seq not in log.counts]
    twice = len(log.counts) - len(set(log.keys.values()))
    return missing, twice


def ingest_secret(database_url: str) -> bytes:
    """Return the confirmation secret real ingest signs with in this database."""
    import psycopg

    from store.confirm_secret import read_confirm_secret

    with psycopg.connect(database_url) as conn:
        return read_confirm_secret(conn)
