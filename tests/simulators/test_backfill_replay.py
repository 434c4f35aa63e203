"""History through the broker: backfill and replay publish past-timestamped, numbered packs."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.mqtt import PacedPublisher
from simulators.packs import Packer, SequenceBook
from simulators.replay import read_recording, registry_tables, shifted_readings
from simulators.runner import Tally, backfill, deliver, live
from simulators.world import Cadence
from streetsense.config import Settings
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading, decode_readings
from streetsense.registry import parse_registry
from streetsense.topics import DeviceTopic, Topics
from tests.simulators.conftest import Collector

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "aarhus_parking.csv"


def _decode(received: list[tuple[str, bytes]], topics: Topics) -> list[Reading]:
    readings: list[Reading] = []
    for topic, payload in received:
        parsed = topics.parse(topic)
        assert isinstance(parsed, DeviceTopic) and parsed.channel.stream is not None
        result = decode_readings(payload, parsed.device_id, parsed.channel.stream)
        assert result.rejections == []
        readings += result.readings
    return readings


def test_backfill_publishes_two_days_of_past_readings_in_sequence(
    mqtt_settings: Settings, topics: Topics, collector: Collector, tmp_path: Path
) -> None:
    city = generate_city(CitySpec(seed=5, lots=4, segments=2))
    end = time.time()
    book = SequenceBook(tmp_path / "seq.json")
    with PacedPublisher(mqtt_settings, window=50) as publisher:
        tally = backfill(
            city, Calendar(seed=5), topics, publisher, book,
            start=end - 2 * 86_400, end=end, progress=False,
        )  # fmt: skip
    received = collector.wait_for(tally.messages)
    assert len(received) == tally.messages > 0
    readings = _decode(received, topics)
    assert len(readings) == tally.readings
    times = [r.observed_at.timestamp() for r in readings]
    assert min(times) < end - 1.9 * 86_400 and max(times) <= end
    per_device: dict[str, list[int]] = defaultdict(list)
    for reading in readings:
        assert reading.seq is not None
        per_device[reading.device_id].append(reading.seq)
    assert len(per_device) == len(city.devices())
    for seqs in per_device.values():
        assert seqs == list(range(1, len(seqs) + 1))
    # The book remembers: a second run continues each device's numbering.
    assert (
        SequenceBook(tmp_path / "seq.json").take(city.lots[0].device_id, 1)
        == len(per_device[city.lots[0].device_id]) + 1
    )


@pytest.mark.skipif(not DATA.is_file(), reason=f"recording not present at {DATA}")
def test_replay_of_aarhus_publishes_counter_readings_ending_by_now(
    mqtt_settings: Settings, topics: Topics, collector: Collector
) -> None:
    recording = read_recording(DATA, "Europe/Copenhagen")
    assert len(recording.lots()) == 8 and recording.skipped == 0
    tables = registry_tables(recording, "replay", (56.15, 10.2))
    registry = parse_registry(tables)
    now = datetime.now(UTC)
    readings, refused = shifted_readings(recording, 2.0, now, align_days=7)
    assert refused == 0 and len(readings) > 400
    daily, _ = shifted_readings(recording, 2.0, now)
    assert 0 <= (now - daily[-1].observed_at).total_seconds() < 86_400
    recorded = recording.observations[-1].at
    # Whole weeks: weekdays and times of day are those of the recording.
    shift = readings[-1].observed_at - recorded
    assert shift.total_seconds() % (7 * 86_400) == 0
    assert 0 <= (now - readings[-1].observed_at).total_seconds() < 7 * 86_400
    sites = {d.id: "replay" for d in registry.devices}
    messages = Packer(topics, sites, window_s=6 * 3600).pack(readings, SequenceBook())
    tally = Tally()
    with PacedPublisher(mqtt_settings) as publisher:
        deliver(messages, publisher, tally)
    got = _decode(collector.wait_for(len(messages)), topics)
    assert len(got) == len(readings)
    assert {r.device_id for r in got} == {d.id for d in registry.devices}
    assert {r.kind for r in got} == {"occupied_spaces"}


def test_unreadable_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "lots.csv"
    path.write_text(
        "lot_id,capacity,occupancy,timestamp\n"
        "A1,100,40,2026-01-05T08:00:00+00:00\n"
        "A1,100,oops,2026-01-05T08:30:00+00:00\n"
        "B2,50,-3,2026-01-05T08:30:00+00:00\n"
    )
    recording = read_recording(path)
    assert recording.skipped == 1 and recording.lots() == {"a1": 100, "b2": 50}
    readings, refused = shifted_readings(recording, 7, datetime(2026, 1, 20, tzinfo=UTC))
    assert refused == 1 and len(readings) == 1


def test_live_run_publishes_only_what_was_observed_already(
    mqtt_settings: Settings, topics: Topics, collector: Collector
) -> None:
    city = generate_city(CitySpec(seed=6, lots=3, segments=2))
    fast = Cadence(
        parking_step_s=1, traffic_interval_s=2, counter_interval_s=2, lamp_interval_s=2,
        heartbeat_s=0,
    )  # fmt: skip
    book = SequenceBook()
    with PacedPublisher(mqtt_settings) as publisher:
        tally = live(
            city, Calendar(seed=6), topics, publisher, book, StopSignal(),
            duration_s=4.0, chunk_s=1.0, window_s=1.0, cadence=fast,
        )  # fmt: skip
    received = collector.wait_for(tally.messages)
    finished = time.time()
    assert len(received) == tally.messages > 0
    readings = _decode(received, topics)
    assert {r.kind for r in readings} >= {"occupied", "vehicle_count", "occupied_spaces"}
    assert max(r.observed_at.timestamp() for r in readings) <= finished
    # Numbers handed out for messages never sent went back: the next run leaves no gap.
    for device, seqs in _seqs(readings).items():
        assert seqs == list(range(1, len(seqs) + 1))
        assert book.next[device] == len(seqs) + 1


def _seqs(readings: list[Reading]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for reading in readings:
        assert reading.seq is not None
        found[reading.device_id].append(reading.seq)
    return {device: sorted(seqs) for device, seqs in found.items()}
