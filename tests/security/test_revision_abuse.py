"""Abuse of reading revisions (SenML `rev`): a device revises only its own readings, never
rolls a newer revision back, cannot wedge a batch with a key revised twice, and a malformed
revision is refused with its reason and kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from harness.ingest import (
    SITE,
    AckWatcher,
    Publisher,
    count,
    ingest_thread,
    register,
    wait_until,
)
from streetsense.config import Settings
from streetsense.topics import Channel, Topics

T = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


def pack(*records: dict[str, object]) -> bytes:
    """A SenML pack of traffic records at T."""
    return json.dumps([{"bt": T.timestamp(), **records[0]}, *records[1:]]).encode()


def test_revisions_touch_only_the_senders_newest_own_readings(
    settings: Settings, topics: Topics
) -> None:
    url = settings.database.url
    register(url, ["victim", "rogue"])
    traffic = {d: topics.device(SITE, d, Channel.TRAFFIC) for d in ("victim", "rogue")}
    with ingest_thread(settings):
        acks = AckWatcher(settings.mqtt.url, topics)
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send(traffic["victim"], pack({"n": "L1/vehicle_count", "v": 9, "seq": 1}))
        publisher.send(traffic["victim"], pack({"n": "L1/vehicle_count", "v": 12, "seq": 2,
                                                "rev": 5}))  # fmt: skip
        # A rogue names the victim in its records: the topic says who sent them.
        publisher.send(traffic["rogue"], pack({"n": "victim/vehicle_count", "v": 0, "seq": 1,
                                               "rev": 9}))  # fmt: skip
        # A replayed older revision, and one key revised twice in one pack.
        publisher.send(traffic["victim"], pack(
            {"n": "L1/vehicle_count", "v": 1, "seq": 3, "rev": 4},
            {"n": "L2/vehicle_count", "v": 3, "seq": 4, "rev": 2},
            {"n": "L2/vehicle_count", "v": 2, "seq": 5, "rev": 1},
            {"n": "L2/vehicle_count", "v": 4, "seq": 6, "rev": 2},
        ))  # fmt: skip
        assert wait_acks(acks, {"victim": 6, "rogue": 1})
        publisher.close()
        acks.close()
    stored = "SELECT value, revision FROM readings WHERE device_id = %s AND sub_id = %s"
    assert fetch(url, stored, "victim", "L1") == [(12.0, 5)]
    assert fetch(url, stored, "victim", "L2") == [(3.0, 2)]
    assert fetch(url, stored, "rogue", "victim") == [(0.0, 9)]
    assert count(url, "SELECT count(*) FROM rejected_messages") == 0


def test_a_malformed_revision_is_refused_with_its_reason_and_kept(
    settings: Settings, topics: Topics
) -> None:
    url = settings.database.url
    register(url, ["loop"])
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        topic = topics.device(SITE, "loop", Channel.TRAFFIC)
        for rev in ("-1", "2147483648", '"1"', "true"):
            body = f'[{{"bt":{T.timestamp()},"n":"L1/vehicle_count","v":1,"rev":{rev}}}]'
            publisher.send(topic, body.encode())
        reasons = "SELECT reason FROM rejected_messages WHERE reason_code = 'bad_payload'"
        assert wait_rows(url, reasons, 4)
        publisher.close()
    assert all("field 'rev'" in reason for (reason,) in fetch(url, reasons))
    assert count(url, "SELECT count(*) FROM readings") == 0


def fetch(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    """Return every row of a query."""
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()  # type: ignore[arg-type]


def wait_acks(acks: AckWatcher, expected: dict[str, int]) -> bool:
    """Wait until each device's ack reached its expected sequence number."""
    return wait_until(lambda: all(acks.acks.get(d) == s for d, s in expected.items()))


def wait_rows(url: str, query: str, rows: int) -> bool:
    """Wait until a query returns this many rows."""
    return wait_until(lambda: len(fetch(url, query)) == rows)
