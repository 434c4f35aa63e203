"""A device flooding at 100x its rate is limited and reported; the others are not slowed."""

from __future__ import annotations

import logging

import pytest

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
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

log = logging.getLogger(__name__)


def test_a_flooding_device_is_rate_limited_alone(
    settings: Settings, topics: Topics, record_property: pytest.RecordProperty
) -> None:
    # 20 msg/s allowed, burst 50; the flooder sends 2,000 messages as fast as it can.
    settings = with_overrides(settings, ingest={"device_rate_per_s": 20.0, "device_burst": 50})
    quiet = [f"q{i}" for i in range(5)]
    register(settings.database.url, ["flood", *quiet])
    url = settings.database.url
    with ingest_thread(settings) as service:
        acks = AckWatcher(settings.mqtt.url, topics)
        flooder = Publisher(settings.mqtt.url, topics)
        others = Publisher(settings.mqtt.url, topics)
        for seq in range(1, 2_001):
            flooder.send_readings(SITE, "flood", readings("flood", seq, 1))
            if seq % 100 == 0:  # the quiet devices at their normal pace meanwhile
                for device in quiet:
                    others.send_readings(SITE, device, readings(device, seq // 100, 1))
        assert wait_until(lambda: all(acks.acks.get(d) == 20 for d in quiet))
        limited = service.metrics.value("streetsense_ingest_rejected_total", reason="rate_limited")
        for client in (flooder, others, acks):
            client.close()
    stored = count(url, "SELECT count(*) FROM readings WHERE device_id = 'flood'")
    # a row per refusal kept whole (20 a minute), one summary row for the rest
    kept = count(
        url, "SELECT sum(repeats) FROM rejected_messages WHERE reason_code = 'rate_limited'"
    )
    rows = count(url, "SELECT count(*) FROM rejected_messages WHERE reason_code = 'rate_limited'")
    assert rows <= 2 * (settings.ingest.refusals_kept_per_minute + 1)
    record_property("flood_sent", 2_000)
    record_property("flood_stored", stored)
    record_property("flood_rate_limited", kept)
    log.info("flood: 2000 sent, %d stored, %d rate-limited", stored, kept)
    assert count(url, "SELECT count(*) FROM readings WHERE device_id <> 'flood'") == 100
    assert kept == limited > 1_000
    assert stored + kept == 2_000  # every message either stored or kept with its reason
    # rate-limited messages are not confirmed: the flooding agent must re-send them later
    assert count(url, "SELECT contiguous_seq FROM device_sequences WHERE device_id = 'flood'") < (
        stored + 1
    )
