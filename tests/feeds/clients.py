"""Test clients of the live channels: a Server-Sent Events reader, an MQTT subscriber."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Event:
    """One SSE event."""

    id: str | None
    event: str
    data: Any


def events(response: httpx.Response) -> Iterator[Event]:
    """Yield the events of a streaming response (comments and retry lines skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in fields:
                yield Event(
                    fields.get("id"), fields.get("event", "message"), json.loads(fields["data"])
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")


Message = tuple[str, Any, bool]  # topic, decoded JSON body (None when empty), retained


def subscribe(url: str, topic_filter: str) -> tuple[paho.Client, queue.Queue[Message]]:
    """Subscribe to a filter; messages land in the returned queue."""
    received: queue.Queue[Message] = queue.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_message = lambda _c, _u, msg: received.put(
        (msg.topic, json.loads(msg.payload) if msg.payload else None, bool(msg.retain))
    )
    parts = urlsplit(url)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.subscribe(topic_filter, qos=1)
    client.loop_start()
    return client, received


def wait_for(received: queue.Queue[Message], match: Callable[[str, Any, bool], bool]) -> Message:
    """Return the first message matching within 15 s, else fail."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            item = received.get(timeout=0.5)
        except queue.Empty:
            continue
        if match(*item):
            return item
    raise AssertionError("no matching MQTT message within 15 s")
