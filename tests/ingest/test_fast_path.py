"""Ingest's lean receive path (paho internals) is taken, not silently switched off.

ingest/link.py's BufferedClient reaches into paho-mqtt's private receive path for speed.
pyproject.toml pins the tested paho range; these tests fail when a paho release (or a change
of ours) leaves messages on paho's own path, which every other test would not notice.
"""

from __future__ import annotations

import uuid
from importlib.metadata import version

import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.ingest import count, exactly_once, ingest_thread, register, stream, wait_until
from ingest.link import PAHO_INTERNALS, BufferedClient
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

DEVICES = ["fast-1", "fast-2"]
PER_DEVICE = 1_000  # 200 packs: a backlog the broker sends in a burst


def test_paho_has_every_internal_the_fast_path_uses() -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="probe")
    try:
        assert client.missing_internals == [], f"paho-mqtt {version('paho-mqtt')}"
        assert len(PAHO_INTERNALS) >= 9
    finally:
        client.close_sockets()


def test_without_an_internal_the_fast_path_says_so_and_stays_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="probe")
    try:
        client.missing_internals = ["_handle_publish"]  # as a paho that renamed it
        client.fast_handler = lambda *_fields: None
        assert client.fast_handler is None
        assert "lacks _handle_publish" in caplog.text
    finally:
        client.close_sockets()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_every_message_of_a_backlog_takes_the_fast_path(
    settings: Settings, topics: Topics, protocol: str
) -> None:
    settings = with_overrides(
        settings, mqtt={"protocol": protocol, "shared_group": "ingest" if protocol == "5" else ""}
    )
    register(settings.database.url, DEVICES)
    client_id = f"fast-{uuid.uuid4().hex[:8]}"
    with ingest_thread(settings, client_id):
        pass  # subscribed: the broker now keeps this session's messages while it is away
    sent = stream(settings.mqtt.url, topics, DEVICES, PER_DEVICE, pack=10)
    with ingest_thread(settings, client_id) as service:
        stored = "SELECT count(*) FROM readings"
        assert wait_until(lambda: count(settings.database.url, stored) == sent, 60)
        # as an operator sees it on /metrics
        path = "streetsense_ingest_receive_path_messages"
        metrics = service.metrics
        in_place = metrics.value(path, path="in_place")
        one_by_one = metrics.value(path, path="paho_reader")
        assert metrics.value(path, path="paho_message") == 0, "messages took paho's slow path"
        # every pack, and the retained acks ingest hears back (control), went the fast way
        assert in_place + one_by_one >= sent // 10
        # a burst arrives many packets per read: most must be taken in place
        assert in_place > one_by_one
    assert exactly_once(settings.database.url) == (sent, sent)
