"""A real MQTT subscriber that gathers what the simulator publishes."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.mqtt import close_client
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.topics import Topics


class Collector:
    """Subscribes to every topic under a prefix and keeps (topic, payload) in arrival order."""

    def __init__(self, url: str, topics: Topics) -> None:
        parts = urlsplit(url)
        self.received: list[tuple[str, bytes]] = []
        self.arrivals: list[float] = []  # wall time each of `received` arrived
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._barrier = f"{topics.prefix}/collector-barrier/{uuid.uuid4().hex[:8]}"
        self._barrier_seen = threading.Event()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self.client.subscribe(topics.subscription(), qos=1)
        assert self._ready.wait(10), "the broker did not confirm the subscription"

    def _on_message(self, _client: Any, _userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            if message.topic == self._barrier:
                self._barrier_seen.set()
                return
            self.received.append((message.topic, bytes(message.payload)))
            self.arrivals.append(time.time())

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, bytes]]:
        """Wait until at least `count` messages arrived (or the timeout); return them all.

        Then a marker of our own goes through the broker: it reaches us after everything the
        broker had already acknowledged, so stragglers (duplicates, extras) are in the result.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received) < count:
            time.sleep(0.02)
        self._barrier_seen.clear()
        self.client.publish(self._barrier, b"", qos=1)
        assert self._barrier_seen.wait(10), "the broker did not pass the collector's marker"
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        """Disconnect."""
        close_client(self.client)


@pytest.fixture
def collector(broker: str, topics: Topics) -> Iterator[Collector]:
    instance = Collector(broker, topics)
    yield instance
    instance.close()


@pytest.fixture
def mqtt_settings(broker: str, topics: Topics) -> Settings:
    """Return settings for the test broker and prefix, without a database."""
    return with_overrides(
        load_settings(None, environ={}), mqtt={"url": broker, "topic_prefix": topics.prefix}
    )
