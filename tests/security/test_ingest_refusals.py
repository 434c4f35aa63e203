"""Hostile devices and strangers against real ingest: floods, invented ids, sites and spots.

Each test publishes the attack on the test broker (deploy/mosquitto/streetsense.conf), runs real
ingest until it has handled every message, and reads what the database kept. Issue 14 items 2
(unknown devices bypass the limits), 11 (one device falsifies a lot, a stranger marks devices
offline), 12 (refused data grows without end) and 13 (integrity gaps).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.ingest import SITE, count, ingest_thread, mqtt_client, register, wait_until
from harness.mqtt import close_client
from ingest.service import IngestService
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading, encode_readings
from streetsense.senml import encode_pack
from streetsense.topics import Channel, Topics
from tests.deploy.test_doctor import doctor

NOW = datetime.now(UTC).replace(microsecond=0)


def _flood(broker: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish every message at QoS 1 and wait until the broker acknowledged them all."""
    client = mqtt_client(broker, inflight=500)
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(60)
    finally:
        close_client(client)


def _handled(service: IngestService, messages: int) -> None:
    assert wait_until(lambda: service.totals.messages >= messages, 60), "ingest fell behind"


def _rows(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, args).fetchall()


def _refusals(url: str) -> dict[str, int]:
    """Return refusals by reason code, each row counted for the refusals it stands for."""
    rows = _rows(url, "SELECT reason_code, sum(repeats) FROM rejected_messages GROUP BY 1")
    return {code: int(total) for code, total in rows}


def _device_of_a_lot(url: str, device: str, lot: str, capacity: int) -> None:
    """Register a device and a lot of `capacity` spaces it belongs to."""
    register(url, [device])
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO lots (lot_id, site_id, name, kind, capacity, lat, lon) "
            "VALUES (%s, %s, %s, 'on_street', %s, 50.0, 8.0)",
            (lot, SITE, lot, capacity),
        )
        conn.execute("UPDATE devices SET lot_id = %s WHERE device_id = %s", (lot, device))


def _pack(device: str, seq: int, value: float = 1.0, sub_id: str | None = None) -> bytes:
    moment = NOW - timedelta(seconds=30) + timedelta(milliseconds=seq)
    return encode_readings([Reading(device, "occupied", moment, value, sub_id, seq=seq)])


@pytest.fixture
def strict(settings: Settings) -> Iterator[Settings]:
    """Settings with small bounds, so that a test can reach each of them quickly."""
    yield with_overrides(
        settings,
        ingest={
            "device_rate_per_s": 5.0,
            "device_burst": 20,
            "max_payload_bytes": 4_096,
            "quarantine_devices_per_site": 30,
            "quarantine_max_bytes": 60_000,
            "refusals_kept_per_minute": 5,
        },
    )


def test_an_unknown_device_gets_the_rate_limit_and_size_cap_of_a_known_one(
    strict: Settings, broker: str, topics: Topics, tmp_path: Path
) -> None:
    url = strict.database.url
    topic = topics.device(SITE, "stranger-1", Channel.PARKING)
    messages = [(topic, _pack("stranger-1", seq)) for seq in range(1, 2_001)]
    messages += [(topic, b"[" + b" " * 1_000_000 + b"]")] * 3  # 1 MB each
    with ingest_thread(strict) as service:
        _flood(broker, messages)
        _handled(service, len(messages))
    quarantined = count(url, "SELECT count(*) FROM quarantine")
    refused = _refusals(url)
    # the burst, and what the rate allows while the flood lasts: a few dozen, not 2,000
    assert 20 <= quarantined < 200
    assert refused["too_large"] == 3
    assert quarantined + refused["rate_limited"] == 2_000  # every message accounted for
    # ...in a bounded number of rows: a few whole per minute, then one summary each
    assert count(url, "SELECT count(*) FROM rejected_messages") <= 4 * (5 + 1)
    biggest = count(url, "SELECT max(octet_length(payload)) FROM rejected_messages")
    assert biggest <= strict.ingest.rejected_payload_cap
    # the reports count every refusal, not the rows
    daily = count(url, "SELECT sum(messages) FROM rejected_daily")
    assert daily == refused["rate_limited"] + refused["too_large"]
    # the operator is told: `streetsense doctor` names the bounds that were hit
    said = doctor(tmp_path, database_url=url, mqtt_url=broker).stdout
    assert "[warn] refused data: last 24 h:" in said
    assert "bounds were hit (rate_limited, too_large)" in said


def test_invented_ids_and_sites_fill_no_more_than_quarantine_bounds(
    strict: Settings, broker: str, topics: Topics
) -> None:
    url = strict.database.url
    register(url, ["known-1"])  # the site SITE is in the registry
    messages = [
        (topics.device(SITE, f"fake-{n}", Channel.PARKING), _pack(f"fake-{n}", 1))
        for n in range(300)
    ]
    messages += [
        (topics.device(f"nowhere-{n}", f"ghost-{n}", Channel.PARKING), _pack(f"ghost-{n}", 1))
        for n in range(300)
    ]
    with ingest_thread(strict) as service:
        _flood(broker, messages)
        _handled(service, len(messages))
    ids = dict(_rows(url, "SELECT site_id = %s, count(DISTINCT device_id) FROM quarantine "
                          "GROUP BY 1", SITE))  # fmt: skip
    assert ids[True] == 30  # the registered site's bound
    assert ids[False] == 30  # every site the registry does not know shares one bound
    refused = _refusals(url)
    assert refused["quarantine_site_full"] == 600 - 60
    # and 540 invented ids do not get a row each: a few whole, the rest in a summary row
    assert count(url, "SELECT count(*) FROM rejected_messages") <= 5 + 1


def test_quarantine_stops_at_its_size_bound(strict: Settings, broker: str, topics: Topics) -> None:
    url = strict.database.url
    bulky = [
        (topics.device(SITE, "big-1", Channel.PARKING), _pack("big-1", seq) + b" " * 2_000)
        for seq in range(1, 41)
    ]
    with ingest_thread(with_overrides(strict, ingest={"device_burst": 100})) as service:
        _flood(broker, bulky)
        _handled(service, len(bulky))
    kept = count(url, "SELECT sum(octet_length(payload)) FROM quarantine")
    assert kept <= 60_000
    assert count(url, "SELECT count(*) FROM quarantine") + _refusals(url)["quarantine_full"] == 40


def test_refused_data_older_than_its_retention_is_pruned(
    settings: Settings, broker: str, topics: Topics
) -> None:
    url = settings.database.url
    old = NOW - timedelta(days=45)
    with psycopg.connect(url) as conn:
        for days in (45, 1):
            conn.execute(
                "INSERT INTO rejected_messages (received_at, topic, reason_code, reason, payload,"
                " payload_bytes) VALUES (%s, 't', 'bad_topic', 'r', '', 0)",
                (NOW - timedelta(days=days),),
            )
            conn.execute(
                "INSERT INTO quarantine (received_at, topic, site_id, device_id, reason, payload)"
                " VALUES (%s, 't', 's', 'd', 'r', '')",
                (NOW - timedelta(days=days),),
            )
    with ingest_thread(settings) as service:
        # any message makes a batch; the prune runs after the first one committed
        _flood(broker, [(topics.device(SITE, "anyone", Channel.PARKING), _pack("anyone", 1))])
        _handled(service, 1)
        assert wait_until(
            lambda: count(url, "SELECT count(*) FROM rejected_messages WHERE received_at < %s",
                          old + timedelta(days=1)) == 0, 30)  # fmt: skip
    assert count(url, "SELECT count(*) FROM quarantine WHERE received_at < %s", NOW) == 1
    assert count(url, "SELECT count(*) FROM rejected_messages WHERE reason = 'r'") == 1


def test_a_reading_twice_in_one_pack_with_different_values_is_refused_with_a_reason(
    settings: Settings, broker: str, topics: Topics
) -> None:
    url = settings.database.url
    register(url, ["gw-dup"])
    moment = (NOW - timedelta(seconds=20)).timestamp()
    pack = encode_pack(
        [
            {"bn": "gw-dup/", "bt": moment, "n": "occupied", "vb": True, "seq": 1},
            {"n": "occupied", "vb": False, "seq": 2},  # same reading, other value
            {"n": "occupied_spaces", "v": 3, "seq": 3},
        ]
    )
    with ingest_thread(settings) as service:
        _flood(broker, [(topics.device(SITE, "gw-dup", Channel.PARKING), pack)])
        _handled(service, 1)
    stored = _rows(url, "SELECT kind, value FROM readings WHERE device_id = 'gw-dup' ORDER BY 1")
    assert stored == [("occupied", 1.0), ("occupied_spaces", 3.0)]  # the first kept
    (reason,) = _rows(url, "SELECT reason FROM rejected_messages WHERE reason_code = "
                           "'conflicting_duplicate'")[0]  # fmt: skip
    assert "occupied" in reason and "different values" in reason


def test_a_reading_sent_again_later_with_another_value_is_refused_with_a_reason(
    settings: Settings, broker: str, topics: Topics
) -> None:
    url = settings.database.url
    register(url, ["gw-again"])
    moment = (NOW - timedelta(seconds=30)).timestamp()
    topic = topics.device(SITE, "gw-again", Channel.PARKING)

    def pack(value: int, seq: int) -> bytes:
        return encode_pack(
            [{"bn": "gw-again/", "bt": moment, "n": "occupied_spaces", "v": value, "seq": seq}]
        )

    with ingest_thread(settings) as service:
        _flood(broker, [(topic, pack(3, 1))])
        _handled(service, 1)
        # Same reading in later messages: an honest re-send (3) and a changed value (9).
        _flood(broker, [(topic, pack(3, 1)), (topic, pack(9, 2))])
        _handled(service, 3)
    stored = _rows(url, "SELECT value FROM readings WHERE device_id = 'gw-again'")
    assert stored == [(3.0,)]  # the stored value stands
    rows = _rows(url, "SELECT reason, repeats FROM rejected_messages WHERE reason_code = "
                      "'conflicting_duplicate' AND device_id = 'gw-again'")  # fmt: skip
    assert len(rows) == 1, rows  # the honest re-send is no conflict
    reason, repeats = rows[0]
    assert "stored earlier as 3" in reason and "came again as 9" in reason and repeats == 1


def test_a_device_publishing_under_another_site_is_refused(
    settings: Settings, broker: str, topics: Topics
) -> None:
    url = settings.database.url
    register(url, ["gw-site"])  # registered at SITE
    wrong = topics.device("elsewhere", "gw-site", Channel.PARKING)
    right = topics.device(SITE, "gw-site", Channel.PARKING)
    with ingest_thread(settings) as service:
        _flood(broker, [(wrong, _pack("gw-site", 1)), (right, _pack("gw-site", 2))])
        _handled(service, 2)
    assert _rows(url, "SELECT seq FROM readings WHERE device_id = 'gw-site'") == [(2,)]
    (reason,) = _rows(url, "SELECT reason FROM rejected_messages WHERE reason_code = "
                           "'wrong_site'")[0]  # fmt: skip
    assert f"registered at site '{SITE}'" in reason


def test_a_gateway_naming_invented_spots_changes_no_lot(
    settings: Settings, broker: str, topics: Topics
) -> None:
    url = settings.database.url
    _device_of_a_lot(url, "gw-lot", "lot-1", 10)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO spots VALUES ('A1', 'lot-1', 'gw-lot', 'A1')")
    moment = (NOW - timedelta(seconds=20)).timestamp()
    records: list[dict[str, Any]] = [{"bn": "gw-lot/", "bt": moment}]
    records += [{"n": f"X{n}/occupied", "vb": True, "seq": n + 2} for n in range(200)]
    records += [{"n": "A1/occupied", "vb": True, "seq": 1}]
    with ingest_thread(settings) as service:
        _flood(broker, [(topics.device(SITE, "gw-lot", Channel.PARKING), encode_pack(records))])
        _handled(service, 1)
    assert _rows(url, "SELECT sub_id FROM readings WHERE device_id = 'gw-lot'") == [("A1",)]
    assert _refusals(url) == {"unknown_spot": 200}


def test_a_device_claiming_its_lot_far_fuller_than_it_can_be_is_refused(
    settings: Settings, broker: str, topics: Topics
) -> None:
    # Before: 100,000 is within occupied_spaces' physical range, so the lot of 10 spaces was
    # stored as taken 100,000 times over and published as full. Now a count more than
    # ingest.capacity_margin above the lot's capacity is refused, within the refusal bounds.
    url = settings.database.url
    _device_of_a_lot(url, "gw-full", "lot-full", 10)
    moment = (NOW - timedelta(seconds=60)).timestamp()
    topic = topics.device(SITE, "gw-full", Channel.PARKING)
    claims = [
        encode_pack([{"n": "occupied_spaces", "v": 100_000, "t": moment + n, "seq": n + 1}])
        for n in range(50)
    ]
    honest = encode_pack([{"n": "occupied_spaces", "v": 12, "t": moment + 50, "seq": 51}])
    with ingest_thread(settings) as service:
        _flood(broker, [(topic, claim) for claim in claims] + [(topic, honest)])
        _handled(service, 51)
    assert _rows(url, "SELECT value FROM readings WHERE device_id = 'gw-full'") == [(12.0,)]
    assert _refusals(url) == {"beyond_capacity": 50}
    # bounded like every refusal: a few rows whole, one summary for the rest
    kept = settings.ingest.refusals_kept_per_minute
    assert count(url, "SELECT count(*) FROM rejected_messages") <= kept + 1
    assert _rows(url, "SELECT counter FROM lot_parking_live WHERE lot_id = 'lot-full'") == [(12.0,)]
    # and the device's agent is confirmed past the refused counts: it does not send them again
    assert (
        count(url, "SELECT contiguous_seq FROM device_sequences WHERE device_id = 'gw-full'") == 51
    )


@pytest.mark.parametrize("trusted", [False, True])
def test_online_false_counts_only_where_the_broker_authenticates_devices(
    settings: Settings, broker: str, topics: Topics, trusted: bool
) -> None:
    url = settings.database.url
    register(url, ["gw-off"])
    status = topics.device(SITE, "gw-off", Channel.STATUS)
    alive = encode_pack([{"n": "online", "vb": True, "t": NOW.timestamp() - 10}])
    forged = encode_pack([{"n": "online", "vb": False}])  # what a stranger (or a will) sends
    settings = with_overrides(settings, ingest={"trust_offline_status": trusted})
    with ingest_thread(settings) as service:
        _flood(broker, [(status, alive)])
        _handled(service, 1)
        _flood(broker, [(status, forged)])
        _handled(service, 2)
    online = count(url, "SELECT online FROM device_state WHERE device_id = 'gw-off'")
    assert online is not trusted
    assert ("untrusted_offline" in _refusals(url)) is not trusted
