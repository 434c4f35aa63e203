"""Delivery through the outbox to real receivers: a webhook endpoint down for an hour gets every
transition once, in order, when it returns; e-mail through a real SMTP server; MQTT through
the real broker."""

from __future__ import annotations

import email
import json
import random
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email import policy

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alerts.delivery import Backoff, Delivered, deliver
from alerts.engine import run_once
from alerts.rules import RuleSet, parse_rules
from harness.mqtt import close_client
from harness.services import free_port
from streetsense.config import Settings
from tests.alerts.receivers import MailBox, WebhookReceiver
from tests.alerts.support import at, health, load_city

SECRET = "s3cret-for-tests-0123456789abcdef"


class Clock:
    """The time the code under test sees; tests move it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def offline_rules(channel: str) -> RuleSet:
    return parse_rules(
        f"""
[[rule]]
name = "offline"
kind = "device_offline"
after_min = 15
notify = ["out"]

{channel}
""",
        "test.toml",
    )


@pytest.fixture
def conn(database_url: str, db: psycopg.Connection) -> Iterator[psycopg.Connection]:
    load_city(db, north_devices=3)
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def flap_devices(conn: psycopg.Connection, db: psycopg.Connection, rules: RuleSet, hours: int,
                 on_round: Callable[[datetime], None]) -> None:  # fmt: skip
    """Every 20 minutes for `hours`: a device goes silent or comes back, an evaluation runs."""
    for step in range(hours * 3):
        minute = 20 * step
        quiet = {0: [], 1: ["n0000"], 2: ["n0000", "n0001"]}[step % 3]
        alive = [d for d in ("n0000", "n0001", "n0002", "counter", "gw", "loop") if d not in quiet]
        health(db, alive, at(minute))
        run_once(conn, rules, at(minute + 16), "UTC")
        on_round(at(minute + 16))


def test_webhook_down_for_an_hour_gets_every_transition_once_in_order(
    conn: psycopg.Connection, db: psycopg.Connection, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TEST_ALERTS_SECRET", SECRET)
    receiver = WebhookReceiver(free_port(), SECRET.encode())
    rules = offline_rules(
        f'[channel.out]\ntype = "webhook"\nurl = "{receiver.url}"\n'
        'secret_env = "TEST_ALERTS_SECRET"\ntimeout_s = 2'
    )
    clock = Clock(at(0))
    results: list[Delivered] = []

    def deliver_now(now: datetime) -> None:
        clock.now = now
        results.append(deliver(conn, rules, settings, clock, Backoff(5, 300), random.Random(1)))

    # Up for the first hour, down (connection refused) for the next, then answering 503.
    receiver.start()
    flap_devices(conn, db, rules, 1, deliver_now)
    delivered_first = len(receiver.received)
    receiver.stop()
    flap_devices(conn, db, rules, 1, lambda now: deliver_now(now + timedelta(hours=1)))
    receiver.start()
    receiver.failing = True
    deliver_now(at(130))
    receiver.failing = False
    assert delivered_first > 0
    assert len(receiver.received) == delivered_first  # nothing got through while down
    assert sum(r.failed for r in results) >= 2
    # back: everything due goes out, in order, once (the clock passes the backoff)
    deliver_now(at(200))
    rows = conn.execute(
        "SELECT outbox_id, delivered_at IS NOT NULL, attempts FROM alert_outbox ORDER BY 1"
    ).fetchall()
    assert all(delivered for _, delivered, _ in rows)
    assert [int(r["delivery"]) for r in receiver.received] == [r[0] for r in rows]
    assert max(attempts for *_, attempts in rows) >= 2
    assert receiver.bad_signatures == 0
    events = conn.execute(
        "SELECT a.subject_id, e.transition FROM alert_events e JOIN alerts a USING (alert_id) "
        "ORDER BY e.event_id"
    ).fetchall()
    sent = [(s["subject_id"], r["transition"]) for r in receiver.received for s in r["subjects"]]
    assert sent == [(subject, transition) for subject, transition in events]


def test_webhook_with_a_wrong_secret_is_refused_and_kept(
    conn: psycopg.Connection, db: psycopg.Connection, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TEST_ALERTS_SECRET", "another-secret-0123456789abcdef")
    receiver = WebhookReceiver(free_port(), SECRET.encode())
    receiver.start()
    rules = offline_rules(
        f'[channel.out]\ntype = "webhook"\nurl = "{receiver.url}"\n'
        'secret_env = "TEST_ALERTS_SECRET"'
    )
    health(db, ["counter"], at(0))
    run_once(conn, rules, at(20), "UTC")
    result = deliver(conn, rules, settings, Clock(at(20)), Backoff(5, 300))
    receiver.stop()
    assert (result.sent, result.failed) == (0, 1)
    assert receiver.received == [] and receiver.bad_signatures == 1
    error = conn.execute("SELECT last_error FROM alert_outbox").fetchone()
    assert error is not None and "401" in error[0]


def test_missing_secret_is_a_recorded_failure_naming_the_variable(
    conn: psycopg.Connection, db: psycopg.Connection, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("TEST_ALERTS_SECRET", raising=False)
    rules = offline_rules(
        '[channel.out]\ntype = "webhook"\nurl = "http://127.0.0.1:9/"\n'
        'secret_env = "TEST_ALERTS_SECRET"'
    )
    health(db, ["counter"], at(0))
    run_once(conn, rules, at(20), "UTC")
    assert deliver(conn, rules, settings, Clock(at(20))).failed == 1
    error = conn.execute("SELECT last_error FROM alert_outbox").fetchone()
    assert error is not None and "TEST_ALERTS_SECRET" in error[0]


def test_email_through_a_real_smtp_server_after_it_was_down(
    conn: psycopg.Connection, db: psycopg.Connection, settings: Settings
) -> None:
    box = MailBox(free_port())
    rules = offline_rules(
        f'[channel.out]\ntype = "email"\nhost = "127.0.0.1"\nport = {box.port}\n'
        'sender = "alerts@city.example"\nto = ["ops@city.example", "field@city.example"]'
    )
    health(db, ["counter", "gw"], at(0))
    run_once(conn, rules, at(20), "UTC")
    clock = Clock(at(20))
    assert deliver(conn, rules, settings, clock).failed == 1  # nobody listening
    box.start()
    try:
        clock.now = at(80)
        assert deliver(conn, rules, settings, clock).sent == 1
        clock.now = at(90)
        assert deliver(conn, rules, settings, clock).sent == 0  # nothing twice
    finally:
        box.stop()
    assert len(box.messages) == 1
    message = email.message_from_bytes(box.messages[0], policy=policy.default)
    assert message["Subject"] == "[streetsense] FIRING offline: 2 devices in old-town"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "counter offline" in text and "gw offline" in text


def test_mqtt_topic_through_the_real_broker(
    conn: psycopg.Connection, db: psycopg.Connection, settings: Settings
) -> None:
    topic = f"{settings.mqtt.topic_prefix}/alerts/field"
    got: list[dict[str, object]] = []
    arrived = threading.Event()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(json.loads(message.payload))
        arrived.set()

    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    host, port = settings.mqtt.url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        rules = offline_rules(f'[channel.out]\ntype = "mqtt"\ntopic = "{topic}"')
        health(db, ["loop"], at(0))
        run_once(conn, rules, at(20), "UTC")
        assert deliver(conn, rules, settings, Clock(at(20))).sent == 1
        assert arrived.wait(10)
    finally:
        close_client(client)
    assert got[0]["rule"] == "offline" and got[0]["count"] == 1
    assert got[0]["subjects"][0]["subject_id"] == "loop"  # type: ignore[index]
