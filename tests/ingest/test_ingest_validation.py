"""Every kind of bad input is kept with a reason; control traffic is skipped; ingest goes on."""

from __future__ import annotations

import json
import time

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
from ingest.replay import replay_quarantine
from streetsense.config import Settings, with_overrides
from streetsense.errors import RegistryError
from streetsense.topics import Channel, Topics

NOW = time.time()


def pack(*records: dict[str, object]) -> bytes:
    return json.dumps(list(records)).encode()


def test_malformed_input_is_rejected_with_reasons(settings: Settings, topics: Topics) -> None:
    settings = with_overrides(settings, ingest={"max_payload_bytes": 2_000, "metrics_port": 0})
    register(settings.database.url, ["d1"])
    parking = topics.device(SITE, "d1", Channel.PARKING)
    status = topics.device(SITE, "d1", Channel.STATUS)
    cases: list[tuple[str, bytes, str]] = [
        (
            f"{topics.prefix}/{SITE}/d1/parking/extra",
            pack({"n": "occupied", "vb": True}),
            "bad_topic",
        ),
        (f"{topics.prefix}/{SITE}/d..1/parking", pack({"n": "occupied", "vb": True}), "bad_topic"),
        (f"{topics.prefix}/{SITE}/{'x' * 80}/parking", b"[]", "bad_topic"),
        (f"{topics.prefix}/{SITE}/d1/weather", pack({"n": "occupied", "vb": True}), "bad_topic"),
        (parking, b"[" * 3_000, "too_large"),
        (parking, b"not json at all", "bad_payload"),
        (parking, b"[" * 1_500 + b"]" * 1_500, "too_large"),
        (parking, b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "bad_payload"),
        (parking, b'[{"n":"occupied","v":NaN}]', "bad_payload"),
        (parking, b"[]", "bad_payload"),
        (
            parking,
            b'[{"n":"occupied","vb":true,"t":' + str(10**400).encode() + b"}]",
            "bad_payload",
        ),
        (parking, pack({"n": "temperature_x", "v": 1, "t": NOW}), "bad_record"),
        (parking, pack({"n": "battery", "v": 3.3, "t": NOW}), "bad_record"),  # wrong stream
        (status, pack({"n": "battery", "v": 99, "u": "V", "t": NOW}), "out_of_range"),
        (status, pack({"n": "battery", "v": 3.3, "u": "furlong", "t": NOW}), "bad_record"),
        (parking, pack({"n": "occupied", "vb": True, "t": NOW + 3_600}), "future"),
        (parking, pack({"n": "occupied", "vb": True, "t": NOW - 30 * 86_400}), "too_late"),
    ]
    url = settings.database.url
    with ingest_thread(settings) as service:
        publisher = Publisher(settings.mqtt.url, topics)
        for topic, payload, _ in cases:
            publisher.send(topic, payload)
        # control channels and feeds are skipped, not rejected
        for channel in (Channel.ACK, Channel.CONFIG, Channel.CONFIG_REPLY):
            publisher.send(topics.device(SITE, "d1", channel), b'{"seq": 3}')
        publisher.send(topics.feed_parking("lot1"), b'{"free": 3}')
        # and ingest still stores good data afterwards
        publisher.send_readings(SITE, "d1", readings("d1", 1, 5))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 5)
        assert wait_until(
            lambda: count(url, "SELECT count(*) FROM rejected_messages") >= len(cases)
        )
        publisher.close()
        ignored = service.metrics.value("streetsense_ingest_messages_ignored_total", why="control")
    assert ignored == 4
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT topic, reason_code, reason, length(payload), payload_bytes "
            "FROM rejected_messages ORDER BY id"
        ).fetchall()
    assert [r[1] for r in rows] == [c[2] for c in cases]
    for (topic, payload, _), (stored_topic, _code, reason, kept, size) in zip(
        cases, rows, strict=True
    ):
        assert stored_topic == topic
        assert size == len(payload)
        assert kept == min(len(payload), settings.ingest.rejected_payload_cap)
        assert len(reason) > 20  # names the cause and the fix
    assert count(url, "SELECT rejected_total FROM device_state WHERE device_id = 'd1'") == (
        len([c for c in cases if c[2] != "bad_topic"])
    )


def test_a_ten_thousand_record_pack_keeps_a_bounded_number_of_rows(
    settings: Settings, topics: Topics
) -> None:
    register(settings.database.url, ["d1"])
    # numbers where a boolean is needed, 10,000 of them in one pack under the size limit
    bad = [{"bt": NOW, "n": "occupied", "v": 5}] + [{"n": "occupied", "v": 5}] * 9_999
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        payload = json.dumps(bad, separators=(",", ":")).encode()
        publisher.send(topics.device(SITE, "d1", Channel.PARKING), payload)
        url = settings.database.url
        assert wait_until(lambda: count(url, "SELECT count(*) FROM rejected_messages") > 0)
        publisher.close()
    # 100 rows per message at most, of which 20 a minute per device and reason stay whole;
    # summary rows stand for the rest (`repeats`)
    kept = settings.ingest.refusals_kept_per_minute
    assert count(url, "SELECT count(*) FROM rejected_messages") == kept + 2
    assert count(url, "SELECT sum(repeats) FROM rejected_messages") == 10_000
    assert count(url, "SELECT count(*) FROM rejected_messages WHERE length(payload) > 0") == 1
    assert count(url, "SELECT rejected_total FROM device_state") == 10_000


def test_unknown_devices_are_quarantined(settings: Settings, topics: Topics) -> None:
    url = settings.database.url
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send_readings(SITE, "stranger", readings("stranger", 1, 3))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM quarantine") == 1)
        publisher.close()
    assert count(url, "SELECT count(*) FROM readings") == 0
    reason = count(url, "SELECT reason FROM quarantine WHERE device_id = 'stranger'")
    assert "registry" in reason
    assert "auto_register" in reason
    assert json.loads(count(url, "SELECT convert_from(payload, 'UTF8') FROM quarantine"))


def test_unknown_devices_are_registered_when_asked(settings: Settings, topics: Topics) -> None:
    settings = with_overrides(settings, ingest={"auto_register": True, "metrics_port": 0})
    url = settings.database.url
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send_readings(SITE, "newcomer", readings("newcomer", 1, 3))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 3)
        publisher.close()
    assert count(url, "SELECT registered_by FROM devices WHERE device_id = 'newcomer'") == "auto"
    assert count(url, "SELECT count(*) FROM quarantine") == 0


def test_device_state_follows_status_and_last_will(settings: Settings, topics: Topics) -> None:
    # a broker that authenticates devices, as the secure sample (tests/security: the others)
    settings = with_overrides(settings, ingest={"trust_offline_status": True})
    register(settings.database.url, ["d1"])
    url = settings.database.url
    status = topics.device(SITE, "d1", Channel.STATUS)
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send(
            status,
            pack(
                {"bn": "d1/", "bt": NOW - 5, "n": "battery", "v": 3600, "u": "mV"},
                {"n": "rssi", "v": -71},
            ),
        )
        publisher.send(status, pack({"n": "battery", "v": 3.1, "t": NOW - 60}))  # older
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 3)
        assert count(url, "SELECT online FROM device_state") is True
        publisher.send(status, pack({"n": "online", "vb": False}))  # the Last Will: no time
        assert wait_until(lambda: count(url, "SELECT online FROM device_state") is False)
        publisher.close()
    state = count(url, "SELECT status FROM device_state")
    assert state == {"battery": 3.6, "rssi": -71}
    assert count(url, "SELECT readings_total FROM device_state") == 4
    lwt_time = count(
        url, "SELECT extract(epoch FROM observed_at) FROM readings WHERE kind = 'online'"
    )
    assert abs(float(lwt_time) - time.time()) < 60  # "now", not 1970


def test_mqtt_311_without_shared_subscription(settings: Settings, topics: Topics) -> None:
    settings = with_overrides(settings, mqtt={"protocol": "3.1.1"})
    register(settings.database.url, ["d1"])
    url = settings.database.url
    with ingest_thread(settings, client_id="ingest-311"):
        publisher = Publisher(settings.mqtt.url, topics)
        for start in range(1, 200, 10):
            publisher.send_readings(SITE, "d1", readings("d1", start, 10))
        # a retained message replayed on subscription is not new data
        publisher.send(
            topics.device(SITE, "d1", Channel.STATUS),
            pack({"n": "online", "vb": True, "t": NOW}),
            retain=True,
        )
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 201)
        publisher.close()
    assert count(url, "SELECT contiguous_seq FROM device_sequences") == 200


def test_quarantined_messages_are_replayed_once_registered(
    settings: Settings, topics: Topics
) -> None:
    url = settings.database.url
    with ingest_thread(settings):
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send_readings(SITE, "late-reg", readings("late-reg", 1, 4))
        assert wait_until(lambda: count(url, "SELECT count(*) FROM quarantine") == 1)
        publisher.close()
        with pytest.raises(RegistryError, match="registry load"):
            replay_quarantine(settings, "late-reg")
        register(url, ["late-reg"])
        assert replay_quarantine(settings, "late-reg") == 1
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 4)
    assert count(url, "SELECT count(*) FROM quarantine WHERE released_at IS NULL") == 0
    assert replay_quarantine(settings, "late-reg") == 0
