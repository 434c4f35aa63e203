"""Test publishers that follow docs/protocol.md: delete on the end-to-end ack, re-send the rest.

The edge engineer builds the real agent; this stand-in is the smallest publisher that keeps
the contract, so fault tests can show that ingest's acks make a broker crash lossless.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.ingest import SITE
from harness.mqtt import close_client
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics


class ConfirmingPublisher:
    """Publish readings of several devices; forget them only once ingest confirms them.

    With `confirm=False` it is the control: it forgets a reading once the broker has it (PUBACK),
    as a plain QoS 1 publisher does, and never re-sends.
    """

    def __init__(
        self,
        url: str,
        topics: Topics,
        devices: list[str],
        *,
        pack: int = 10,
        resend_s: float = 2.0,
        confirm: bool = True,
    ) -> None:
        self.topics = topics
        self.devices = devices
        self.pack = pack
        self.resend_s = resend_s
        self.confirm = confirm
        self.lock = threading.Lock()
        # device -> seq -> (reading, last sent at)
        self.pending: dict[str, dict[int, tuple[Reading, float]]] = {d: {} for d in devices}
        self.sent = 0
        self.resent = 0
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        parts = urlsplit(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_ack
        self.client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self._stop = threading.Event()
        self._resender = threading.Thread(target=self._resend_loop, daemon=True)
        if confirm:
            self._resender.start()

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        if self.confirm:
            client.subscribe(f"{self.topics.prefix}/{SITE}/+/ack", qos=1)

    def _on_ack(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[-2]
        upto = int(json.loads(msg.payload)["seq"])
        with self.lock:
            waiting = self.pending.get(device, {})
            for seq in [s for s in waiting if s <= upto]:
                del waiting[seq]

    def publish(self, per_device: int, pause_s: float = 0.0) -> None:
        """Publish per_device readings of each device, in packs, pausing between rounds."""
        for start in range(1, per_device + 1, self.pack):
            for device in self.devices:
                size = min(self.pack, per_device - start + 1)
                batch = [
                    Reading(
                        device,
                        "occupied",
                        self.t0 + timedelta(milliseconds=seq),
                        float(seq % 2),
                        seq=seq,
                    )
                    for seq in range(start, start + size)
                ]
                now = time.monotonic()
                if self.confirm:
                    with self.lock:
                        for reading in batch:
                            self.pending[device][reading.seq or 0] = (reading, now)
                self._send(device, batch)
                self.sent += size
            if pause_s:
                time.sleep(pause_s)

    def _send(self, device: str, batch: list[Reading]) -> mqtt.MQTTMessageInfo:
        topic = self.topics.device(SITE, device, Channel.PARKING)
        return self.client.publish(topic, encode_readings(batch), qos=1)

    def _resend_loop(self) -> None:
        while not self._stop.wait(self.resend_s / 4):
            now = time.monotonic()
            for device in self.devices:
                with self.lock:
                    due = sorted(
                        (seq, reading)
                        for seq, (reading, at) in self.pending[device].items()
                        if now - at >= self.resend_s
                    )
                    for seq, reading in due:
                        self.pending[device][seq] = (reading, now)
                readings = [reading for _, reading in due]
                for i in range(0, len(readings), self.pack):
                    self._send(device, readings[i : i + self.pack])
                    self.resent += len(readings[i : i + self.pack])

    def unconfirmed(self) -> int:
        """Return how many readings wait for ingest's confirmation."""
        with self.lock:
            return sum(len(waiting) for waiting in self.pending.values())

    def close(self) -> None:
        """Stop re-sending and disconnect."""
        self._stop.set()
        if self._resender.is_alive():
            self._resender.join(5)
        close_client(self.client)
