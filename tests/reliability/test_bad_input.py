"""Bad input not covered elsewhere: Infinity and overflowing numbers, wildcard topic injection.

Each bad message is rejected with a reason (or refused by the broker before ingest sees it),
and ingest keeps storing good data afterwards.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
import pytest

from harness.ingest import (
    SITE,
    Publisher,
    count,
    ingest_thread,
    readings,
    register,
    wait_until,
)
from streetsense.config import Settings
from streetsense.topics import Channel, Topics

pytestmark = pytest.mark.faults
NUMBERS = [b"Infinity", b"-Infinity", b"1e999", b"-1e999"]


def _packet(kind: int, body: bytes) -> bytes:
    """Frame an MQTT 3.1.1 control packet (remaining length as a variable byte integer)."""
    size, encoded = len(body), b""
    while True:
        size, digit = divmod(size, 128)
        encoded += bytes([digit | (0x80 if size else 0)])
        if not size:
            return bytes([kind]) + encoded + body


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def _raw_publish(url: str, topic: str, payload: bytes) -> bytes:
    """Publish with a hand-built client that does not check the topic; return what the broker
    answered after the PUBLISH (b"" when it closed the connection)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 1883), timeout=5) as sock:
        connect = _text("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 30) + _text("injector")
        sock.sendall(_packet(0x10, connect))
        assert sock.recv(4)[:1] == b"\x20", "no CONNACK"
        sock.sendall(_packet(0x32, _text(topic) + struct.pack("!H", 1) + payload))  # QoS 1
        try:
            return sock.recv(16)
        except ConnectionResetError:
            return b""


def test_infinite_numbers_are_rejected_with_reasons(
    settings: Settings, topics: Topics, report: Callable[..., None]
) -> None:
    url = settings.database.url
    register(url, ["d1"])
    parking = topics.device(SITE, "d1", Channel.PARKING)
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        for number in NUMBERS:
            publisher.send(parking, b'[{"n":"occupied","v":' + number + b',"t":1.8e9}]')
        publisher.send_readings(SITE, "d1", readings("d1", 1, 5))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 5)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM rejected_messages") == 4)
        publisher.close()
    with psycopg.connect(url) as conn:
        reasons = conn.execute("SELECT reason_code, reason FROM rejected_messages").fetchall()
    report("bad_numbers", sent=len(NUMBERS) + 5, stored=5, rejected=len(reasons))
    assert all(len(reason) > 20 for _, reason in reasons)  # each names its cause


@pytest.mark.parametrize("level", ["+", "#", "d1/#"])
def test_wildcard_topics_are_refused_and_ingest_keeps_going(
    level: str, settings: Settings, topics: Topics, report: Callable[..., None]
) -> None:
    url = settings.database.url
    register(url, ["d1"])
    payload = b'[{"n":"occupied","vb":true}]'
    with ingest_thread(settings):
        answer = _raw_publish(settings.mqtt.url, f"{topics.prefix}/{SITE}/{level}/parking", payload)
        publisher = Publisher(settings.mqtt.url, topics)
        with pytest.raises(ValueError, match="wildcard"):  # paho refuses before sending
            publisher.client.publish(f"{topics.prefix}/{SITE}/{level}", payload, 1)
        publisher.send_readings(SITE, "d1", readings("d1", 1, 5))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 5)
        publisher.close()
    rows = count(url, "SELECT count(*) FROM readings")
    report(f"topic_injection_{level}", broker_answer=answer.hex(), stored=rows)
    assert answer == b"", "the broker accepted a PUBLISH to a wildcard topic"
    assert rows == 5
