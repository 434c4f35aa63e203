"""A count its lot cannot hold is refused at ingest; a modest overshoot is stored and flagged.

Aarhus's recordings hold both: NORREPORT (65 spaces) jumped from 0 to 1,464 for one reading
on 11 July 2014, then read up to 67; BUSGADEHUSET (130 spaces) read up to 2.5 times its
capacity on 2 July. Replayed through the real broker into real ingest with the recording's
registry, what is more than `ingest.capacity_margin` above capacity is kept in
rejected_messages with a reason naming the capacity and the fix; the rest is stored, and the
read side flags the overshoot as it always did.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from feeds.live import LiveLot
from harness.ingest import SITE, Publisher, count, ingest_thread, wait_until
from ingest.replay import replay_rejected
from ingest.service import IngestService
from simulators.replay import (
    Observation,
    Recording,
    read_recording,
    registry_tables,
    shifted_readings,
)
from store.feeds_reads import lot_parking
from store.registry import store_registry
from streetsense.config import Settings
from streetsense.lot_checks import checked_occupied
from streetsense.readings import Reading, encode_readings
from streetsense.registry import parse_registry
from streetsense.topics import Channel, Topics

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aarhus_parking.csv"
ZONE = ZoneInfo("Europe/Copenhagen")


def _day(recording: Recording, lot: str, day: date) -> list[Observation]:
    return [
        o for o in recording.observations if o.lot == lot and o.at.astimezone(ZONE).date() == day
    ]


def _publish(settings: Settings, topics: Topics, readings: list[Reading]) -> None:
    """Publish each reading alone, as a gate counter reports."""
    publisher = Publisher(settings.mqtt.url, topics)
    try:
        for reading in readings:
            topic = topics.device(SITE, reading.device_id, Channel.PARKING)
            publisher.send(topic, encode_readings([reading]))
    finally:
        publisher.close()


def _handled(service: IngestService, messages: int) -> None:
    assert wait_until(lambda: service.totals.messages >= messages, 60), "ingest fell behind"


def _stored(url: str, device: str) -> list[float]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT value FROM readings WHERE device_id = %s ORDER BY observed_at", (device,)
        ).fetchall()
    return [row[0] for row in rows]


def _refused(url: str, device: str) -> list[str]:
    """Return the reason of every refusal, one per refusal (a summary row stands for many)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT reason, repeats FROM rejected_messages WHERE device_id = %s "
            "AND reason_code = 'beyond_capacity' ORDER BY id",
            (device,),
        ).fetchall()
    return [reason for reason, repeats in rows for _ in range(repeats)]


@pytest.mark.skipif(not DATA.is_file(), reason=f"recording not present at {DATA}")
def test_aarhus_counts_beyond_capacity_are_refused_and_modest_ones_stored_and_flagged(
    settings: Settings, topics: Topics
) -> None:
    recording = read_recording(DATA, "Europe/Copenhagen")
    norreport = _day(recording, "norreport", date(2014, 7, 11))
    # up to its last reading over capacity, so the lot's newest count is a modest overshoot
    last_over = max(i for i, o in enumerate(norreport) if o.occupied > o.capacity)
    norreport = norreport[: last_over + 1]
    busgadehuset = _day(recording, "busgadehuset", date(2014, 7, 2))
    now = datetime.now(UTC)
    readings: list[Reading] = []
    for rows in (norreport, busgadehuset):
        shifted, unusable = shifted_readings(Recording(rows, 0), 1.0, now)
        assert unusable == 0
        readings += shifted
    with psycopg.connect(settings.database.url) as conn:
        tables = registry_tables(recording, SITE, (56.15, 10.2))
        store_registry(conn, parse_registry(tables), "aarhus")
    margin = settings.ingest.capacity_margin
    assert margin == 1.0  # the default this test judges
    with ingest_thread(settings) as service:
        _publish(settings, topics, readings)
        _handled(service, len(readings))
    url = settings.database.url
    for device, rows, capacity in (
        ("norreport-counter", norreport, 65),
        ("busgadehuset-counter", busgadehuset, 130),
    ):
        limit = capacity * (1 + margin)
        values = [o.occupied for o in rows]
        assert _stored(url, device) == [v for v in values if v <= limit]
        reasons = _refused(url, device)
        assert len(reasons) == sum(1 for v in values if v > limit) > 0
        assert f"registered capacity is {capacity}" in reasons[0]
        assert (
            "ingest.capacity_margin = 1" in reasons[0] and "streetsense registry load" in reasons[0]
        )
    assert _stored(url, "norreport-counter")[-1] == 67  # over 65, within the margin
    assert "1464 spaces taken" in _refused(url, "norreport-counter")[0]
    # Read side, as before: the modest overshoot is published as full, with the failed check.
    with psycopg.connect(url) as conn:
        (row,) = lot_parking(conn, ["norreport"])
    occupied, checks = checked_occupied(65, LiveLot.of(row))
    assert occupied == 65 and [c.code for c in checks] == ["over_capacity"]


def _counter_registry(capacity: int) -> dict[str, list[dict[str, object]]]:
    return {
        "site": [{"id": SITE, "name": "Test"}],
        "lot": [{"id": "harbour", "site": SITE, "name": "Harbour", "kind": "off_street",
                 "capacity": capacity, "lat": 56.15, "lon": 10.2}],
        "device": [{"id": "harbour-gate", "site": SITE, "kind": "counter", "lot": "harbour"}],
    }  # fmt: skip


def _load(url: str, capacity: int) -> None:
    with psycopg.connect(url) as conn:
        store_registry(conn, parse_registry(_counter_registry(capacity)), "test")


def test_a_corrected_capacity_applies_at_once_and_the_refused_counts_can_be_sent_again(
    settings: Settings, topics: Topics
) -> None:
    url = settings.database.url
    _load(url, 10)
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    first = [Reading("harbour-gate", "occupied_spaces", moment + timedelta(seconds=s), v)
             for s, v in ((0, 18.0), (1, 25.0), (2, 31.0))]  # fmt: skip
    with ingest_thread(settings) as service:
        reads = service.metrics.value("streetsense_ingest_registry_reads_total")
        _publish(settings, topics, first)
        _handled(service, 3)
        assert _stored(url, "harbour-gate") == [18.0]  # 25 and 31 are beyond 2 x 10
        # The lot has 30 spaces after all: ingest reads the registry as soon as it changed,
        # while idle too, so the refused counts replayed now meet the corrected capacity.
        _load(url, 30)
        assert wait_until(
            lambda: service.metrics.value("streetsense_ingest_registry_reads_total") > reads, 10
        ), "ingest did not notice the registry change"
        assert replay_rejected(settings) == (2, 0)
        _handled(service, 5)
        assert _stored(url, "harbour-gate") == [18.0, 25.0, 31.0]
        # and a capacity lowered refuses from then on
        reads = service.metrics.value("streetsense_ingest_registry_reads_total")
        _load(url, 12)
        assert wait_until(
            lambda: service.metrics.value("streetsense_ingest_registry_reads_total") > reads, 10
        )
        later = [replace(first[1], observed_at=moment + timedelta(seconds=10))]
        _publish(settings, topics, later)
        _handled(service, 6)
    assert _stored(url, "harbour-gate") == [18.0, 25.0, 31.0]
    reasons = _refused(url, "harbour-gate")
    assert len(reasons) == 3 and "registered capacity is 12" in reasons[-1]
    assert count(url, "SELECT count(*) FROM rejected_messages WHERE replayed_at IS NOT NULL") == 2
