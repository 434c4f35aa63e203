"""Lot changes republished as retained MQTT messages on `<prefix>/feeds/parking/<lot>`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import aiomqtt
import psycopg
import pytest

from feeds import engine
from feeds.republish import client_options
from harness.mqtt import close_client
from store.registry import store_registry
from streetsense.config import Settings, with_overrides
from streetsense.errors import ConfigError
from streetsense.registry import parse_registry
from streetsense.topics import Topics
from tests.feeds.clients import subscribe, wait_for
from tests.feeds.conftest import CITY, Server, counter, feeds_settings, write


def test_changes_are_republished_retained(
    city: psycopg.Connection,
    settings: Settings,
    topics: Topics,
    start_server: Callable[..., Server],
) -> None:
    server = start_server(feeds_settings(settings, republish_mqtt=True))
    harbour = topics.feed_parking("harbour")
    # Every lot is published (retained) on connect; a late subscriber gets it at once.
    deadline = time.monotonic() + 15
    while True:
        if server.metric("streetsense_feeds_mqtt_connected") == 1.0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    late, received = subscribe(settings.mqtt.url, f"{topics.prefix}/feeds/parking/#")
    try:
        _, body, retained = wait_for(received, lambda t, b, r: t == harbour)
        assert retained
        assert body["available"] == 300
        write(city, [counter("harbour-counter", 390, datetime.now(UTC))])
        _, body, _ = wait_for(received, lambda t, b, r: t == harbour and b["available"] == 10)
        assert body["id"] == "harbour"
        assert "event_id" in body
        assert "harbour-counter" not in json.dumps(body)  # aggregates only
    finally:
        close_client(late)


def test_protocol_version_follows_settings(settings: Settings) -> None:
    v311 = with_overrides(settings, mqtt={"protocol": "3.1.1"})
    assert client_options(v311)["protocol"] is aiomqtt.ProtocolVersion.V311
    assert client_options(settings)["protocol"] is aiomqtt.ProtocolVersion.V5
    with pytest.raises(ConfigError, match=r"mqtt\.protocol"):
        client_options(with_overrides(settings, mqtt={"protocol": "4"}))


def test_republish_over_mqtt_311(
    city: psycopg.Connection,
    settings: Settings,
    topics: Topics,
    start_server: Callable[..., Server],
) -> None:
    v311 = with_overrides(settings, mqtt={"protocol": "3.1.1"})
    start_server(feeds_settings(v311, republish_mqtt=True))
    client, received = subscribe(settings.mqtt.url, f"{topics.prefix}/feeds/parking/#")
    try:
        topic, body, _ = wait_for(received, lambda t, b, r: b["id"] == "market")
        assert topic == topics.feed_parking("market")
        assert body["available"] == 1
    finally:
        close_client(client)


def test_a_lot_removed_from_the_registry_has_its_topic_cleared(
    city: psycopg.Connection,
    settings: Settings,
    topics: Topics,
    start_server: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "FULL_S", 0.5)  # re-read the registry often, for the test
    start_server(feeds_settings(settings, republish_mqtt=True))
    station = topics.feed_parking("station")
    client, received = subscribe(settings.mqtt.url, f"{topics.prefix}/feeds/parking/#")
    try:
        wait_for(received, lambda t, b, r: t == station and b is not None)
        lots = [lot for lot in CITY["lot"] if lot["id"] != "station"]
        smaller = {**CITY, "lot": lots}
        store_registry(city, parse_registry(smaller), "tests")
        wait_for(received, lambda t, b, r: t == station and b is None)
    finally:
        close_client(client)
