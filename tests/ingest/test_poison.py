"""A message the database refuses is kept as a rejection; ingest stores everything else, goes on."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from harness.ingest import (
    SITE,
    AckWatcher,
    close_client,
    count,
    ingest_thread,
    mqtt_client,
    register,
    wait_until,
)
from ingest.classify import Classifier
from ingest.commit import commit_batch
from ingest.inbox import Message
from ingest.isolate import classify, unlimited
from ingest.replay import replay_rejected
from store.writes import ReadingWriter
from streetsense.config import Settings
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics

DEVICES = [f"dev{i}" for i in range(4)]
POISON = 4242.0
MESSAGES = 200
POISONED = {37, 151}  # message numbers carrying the refused value
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def message(number: int) -> tuple[str, int, float]:
    """Return (device, seq, value) of message `number` of the stream: one count per message."""
    device = DEVICES[number % len(DEVICES)]
    value = POISON if number in POISONED else float(number)
    return device, number // len(DEVICES) + 1, value


def payload(device: str, seq: int, value: float) -> bytes:
    observed = T0 + timedelta(seconds=seq)
    return encode_readings([Reading(device, "vehicle_count", observed, value, seq=seq)])


def publish(url: str, topics: Topics, numbers: range) -> None:
    """Publish the messages at QoS 1, all in flight at once, and wait for the broker's PUBACKs."""
    client = mqtt_client(url, inflight=len(numbers))
    infos = []
    for number in numbers:
        device, seq, value = message(number)
        topic = topics.device(SITE, device, Channel.TRAFFIC)
        infos.append(client.publish(topic, payload(device, seq, value), qos=1))
    for info in infos:
        info.wait_for_publish(10)
    close_client(client)


def poisoned(settings: Settings, db: psycopg.Connection) -> str:
    """Register the devices and make the poison value a real refusal; return the database URL.

    A CHECK constraint is a refusal that is not an outage, as a data error would be.
    """
    register(settings.database.url, DEVICES)
    db.execute("ALTER TABLE readings ADD CONSTRAINT poison CHECK (value <> 4242)")
    db.commit()
    return settings.database.url


def test_a_refused_message_is_rejected_and_ingest_goes_on(
    settings: Settings, topics: Topics, db: psycopg.Connection
) -> None:
    url = poisoned(settings, db)
    good = {message(n) for n in range(MESSAGES) if n not in POISONED}
    client_id = f"ingest-poison-{topics.prefix.split('/')[0]}"
    with ingest_thread(settings, client_id) as service:
        acks = AckWatcher(settings.mqtt.url, topics)
        publish(settings.mqtt.url, topics, range(MESSAGES))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == len(good), 10)
        assert wait_until(
            lambda: count(url, "SELECT count(*) FROM rejected_messages") == len(POISONED), 5
        )
        # ingest is still running: a message published after the poison is stored
        publish(settings.mqtt.url, topics, range(MESSAGES, MESSAGES + 1))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == len(good) + 1, 5)
        # the refused messages count as handled: every device's ack reaches its last seq
        last: dict[str, int] = {}
        for device, seq, _ in map(message, range(MESSAGES + 1)):
            last[device] = max(seq, last.get(device, 0))
        assert wait_until(lambda: acks.acks == last, 5), acks.acks
        acks.close()
        # every message received is acknowledged (ingest receives its own acks too: control)
        metrics = service.metrics
        received = "streetsense_ingest_messages_received_total"
        acked = "streetsense_ingest_messages_acked_total"
        assert wait_until(lambda: metrics.value(acked) == metrics.value(received), 5)
        assert metrics.value(received) > MESSAGES
        assert metrics.value("streetsense_ingest_rejected_total", reason="store_refused") == 2
        assert metrics.value("streetsense_ingest_poison_messages_total") == 2
    stored = db.execute("SELECT device_id, seq, value FROM readings").fetchall()
    assert sorted(stored) == sorted([*good, message(MESSAGES)])  # each exactly once
    rejected = db.execute(
        "SELECT topic, device_id, reason_code, reason, payload, payload_bytes "
        "FROM rejected_messages ORDER BY id"
    ).fetchall()
    expected = [message(n) for n in sorted(POISONED)]
    assert [(r[1], r[2]) for r in rejected] == [(d, "store_refused") for d, _, _ in expected]
    for (topic, _, _, reason, kept, size), (device, seq, value) in zip(
        rejected, expected, strict=True
    ):
        assert topic == topics.device(SITE, device, Channel.TRAFFIC)
        assert "poison" in reason  # names the constraint
        assert "--replay-rejected" in reason  # and what to do
        assert bytes(kept) == payload(device, seq, value)
        assert size == len(kept)
    # nothing is left unacknowledged: the same session gets no redelivery after a restart.
    # A marker on every device's topic, published after the restart, comes after anything the
    # broker still held for the session (it keeps each topic's order): once the markers are
    # stored, a redelivery would have been received.
    markers = range(MESSAGES + 1, MESSAGES + 1 + len(DEVICES))
    with ingest_thread(settings, client_id) as again:
        publish(settings.mqtt.url, topics, markers)
        total = len(good) + 1 + len(markers)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == total, 10)
        # the retained acks come again because it subscribed again: control, not data
        ignored = again.metrics.value("streetsense_ingest_messages_ignored_total", why="control")
        assert again.metrics.value(received) == ignored + len(markers)


def test_a_refused_message_is_never_acknowledged_before_its_rejection_is_stored(
    settings: Settings, topics: Topics, db: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    url = poisoned(settings, db)
    db.execute(
        "ALTER TABLE rejected_messages ADD CONSTRAINT no_refusals "
        "CHECK (reason_code <> 'store_refused')"
    )
    db.commit()
    numbers = range(40)  # message 37 is poisoned, 38 and 39 come after it
    with ingest_thread(settings) as service:
        publish(settings.mqtt.url, topics, numbers)
        assert wait_until(
            lambda: "storing the rejection" in caplog.text and "no_refusals" in caplog.text, 10
        )
        # stuck on the poison: what follows it waits, unacknowledged
        later = [message(38)[:2], message(39)[:2]]
        assert not any(
            count(url, "SELECT count(*) FROM readings WHERE (device_id, seq) = (%s, %s)", *key)
            for key in later
        )
        assert service.metrics.value("streetsense_ingest_messages_acked_total") < len(numbers)
        db.execute("ALTER TABLE rejected_messages DROP CONSTRAINT no_refusals")
        db.commit()
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 39, 10)
        assert count(url, "SELECT reason_code FROM rejected_messages") == "store_refused"


def test_a_message_that_breaks_classification_is_rejected_alone(
    settings: Settings, topics: Topics, database_url: str
) -> None:
    register(database_url, ["d1", "d2"])
    # The rate limit is not under test (and an absurd receive time throws a bucket off).
    ingest = replace(settings.ingest, device_rate_per_s=0.0)
    classifier = Classifier(ingest, topics, {"d1": SITE, "d2": SITE})
    now = time.time()

    def received(device: str, seq: int, at: float = now) -> Message:
        reading = Reading(device, "occupied", T0 + timedelta(seconds=seq), 1.0, seq=seq)
        topic = topics.device(SITE, device, Channel.PARKING)
        return Message(topic, encode_readings([reading]), seq, 1, False, at, 0)

    # A receive time in the year 33658 makes classification raise after it has already noted
    # the device as seen then: a guard that only caught the error would commit that and fail.
    odd = received("d1", 2, at=1e12)
    messages = [received("d1", 1), odd, received("d1", 3), received("d2", 1)]
    batches = classify(classifier, unlimited(classifier), messages)
    assert [m for b in batches for m in b.messages] == messages  # each once, in order
    writer = ReadingWriter()
    with psycopg.connect(database_url, autocommit=True) as conn:
        for batch in batches:
            commit_batch(conn, batch, settings.ingest.rejected_payload_cap, writer)
        stored = conn.execute("SELECT device_id, seq FROM readings ORDER BY 1, 2").fetchall()
        rejected = conn.execute(
            "SELECT device_id, reason_code, reason, payload FROM rejected_messages"
        ).fetchall()
        seen = conn.execute("SELECT max(last_seen_at) FROM device_state").fetchone()
    assert stored == [("d1", 1), ("d1", 3), ("d2", 1)]
    [(device, code, reason, kept)] = rejected
    assert (device, code, bytes(kept)) == ("d1", "ingest_error", odd.payload)
    assert "ValueError" in reason
    assert "bug in streetsense" in reason
    assert seen is not None
    assert seen[0] <= datetime.now(UTC)


def test_a_database_not_as_this_release_expects_is_waited_out_not_blamed_on_messages(
    settings: Settings, topics: Topics, db: psycopg.Connection
) -> None:
    url = settings.database.url
    register(url, DEVICES)
    # A bad deploy: the table is not there (SQLSTATE 42P01). No message is at fault.
    db.execute("ALTER TABLE readings RENAME TO readings_elsewhere")
    db.commit()
    with ingest_thread(settings) as service:
        publish(settings.mqtt.url, topics, range(20))
        assert wait_until(
            lambda: service.metrics.value("streetsense_ingest_database_errors_total") >= 2, 10
        )
        assert count(url, "SELECT count(*) FROM rejected_messages") == 0
        assert service.metrics.value("streetsense_ingest_messages_acked_total") == 0
        db.execute("ALTER TABLE readings_elsewhere RENAME TO readings")
        db.commit()
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 20, 15)
    assert count(url, "SELECT count(*) FROM rejected_messages") == 0


def test_refused_messages_are_replayed_once_the_cause_is_fixed(
    settings: Settings, topics: Topics, db: psycopg.Connection
) -> None:
    url = poisoned(settings, db)
    with ingest_thread(settings):
        publish(settings.mqtt.url, topics, range(40))  # message 37 is poisoned
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 39, 10)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM rejected_messages") == 1, 5)
        db.execute("ALTER TABLE readings DROP CONSTRAINT poison")
        db.commit()
        assert replay_rejected(settings) == (1, 0)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 40, 10)
        assert replay_rejected(settings) == (0, 0)  # each is replayed once
    assert count(url, "SELECT count(*) FROM rejected_messages WHERE replayed_at IS NOT NULL") == 1
    stored = db.execute("SELECT device_id, seq, value FROM readings").fetchall()
    assert sorted(stored) == sorted(message(n) for n in range(40))
