"""Ingest end to end on the real broker and database: store, dedupe, acknowledge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from harness.ingest import (
    SITE,
    AckWatcher,
    Publisher,
    count,
    ingest_thread,
    readings,
    register,
    wait_until,
)
from streetsense.config import Settings
from streetsense.topics import Topics


def test_readings_are_stored_once_and_acknowledged(settings: Settings, topics: Topics) -> None:
    devices = [f"dev{i}" for i in range(5)]
    register(settings.database.url, devices)
    url = settings.database.url
    # One base time for both rounds: readings() would take a new one if a second ticked over.
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    with ingest_thread(settings) as service:
        acks = AckWatcher(settings.mqtt.url, topics)
        publisher = Publisher(settings.mqtt.url, topics)
        for device in devices:
            for start in range(1, 101, 10):
                publisher.send_readings(SITE, device, readings(device, start, 10, t0))
        # the same packs again: duplicates, written once
        for start in range(1, 101, 10):
            publisher.send_readings(SITE, devices[0], readings(devices[0], start, 10, t0))
        assert wait_until(lambda: all(acks.acks.get(d) == 100 for d in devices))
        assert count(url, "SELECT count(*) FROM readings") == 500
        assert service.metrics.value("streetsense_ingest_readings_duplicate_total") == 100
        publisher.close()
        acks.close()
    assert count(url, "SELECT count(DISTINCT (device_id, seq)) FROM readings") == 500
    assert count(url, "SELECT sum(readings_total) FROM device_state") == 500
    assert count(url, "SELECT count(*) FROM rejected_messages") == 0
