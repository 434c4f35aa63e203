"""Faults do what they claim: to readings, to messages, and to what ingest would decode."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pytest

from simulators import faults
from simulators.city import City, CitySpec, generate_city
from simulators.demand import Calendar
from simulators.packs import Outbound, SequenceBook
from simulators.runner import make_packer
from simulators.scenario import FaultOrder, build, default_device
from simulators.world import CitySimulation
from streetsense.errors import PayloadError
from streetsense.kinds import Stream
from streetsense.readings import Reading, decode_readings
from streetsense.topics import Channel, DeviceTopic, Topics

START = datetime(2026, 11, 3, 6, tzinfo=UTC).timestamp()
END = START + 3 * 3600
WINDOW = faults.Window(START + 3600, START + 7200)
TOPICS = Topics("test/streetsense/v1")


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(CitySpec(seed=21, lots=8, segments=4))


@pytest.fixture(scope="module")
def readings(city: City) -> list[Reading]:
    return CitySimulation(city, Calendar(seed=21), START).advance(END)


def _of(readings: list[Reading], device: str) -> list[Reading]:
    return [r for r in readings if r.device_id == device]


def _inside(reading: Reading) -> bool:
    return WINDOW.holds(reading.observed_at.timestamp())


def test_dropout_removes_only_the_window(city: City, readings: list[Reading]) -> None:
    device = default_device(city, "dropout")
    after = faults.dropout(readings, device, WINDOW)
    assert not [r for r in _of(after, device) if _inside(r)]
    assert len([r for r in _of(readings, device) if not _inside(r)]) == len(_of(after, device))
    assert len(after) < len(readings)


def test_stuck_sensor_repeats_its_last_value(city: City, readings: list[Reading]) -> None:
    device = default_device(city, "stuck")
    before = [r for r in _of(readings, device) if _inside(r) and r.kind == "occupied_spaces"]
    after = _of(faults.stuck(readings, device, WINDOW), device)
    stuck = [r for r in after if _inside(r) and r.kind == "occupied_spaces"]
    assert len({r.value for r in before}) > 1
    assert len({r.value for r in stuck}) == 1
    assert len(stuck) == len(before)


def test_flapping_toggles_a_spot_every_few_seconds(city: City, readings: list[Reading]) -> None:
    device = default_device(city, "flapping")
    flapped = [r for r in faults.flapping(readings, device, "s01", WINDOW) if _inside(r)]
    spot = [r.value for r in flapped if r.device_id == device and r.sub_id == "s01"]
    assert len(spot) >= 1000
    assert sum(a != b for a, b in itertools.pairwise(spot)) > 0.9 * len(spot)


def test_clock_skew_shifts_one_device(city: City, readings: list[Reading]) -> None:
    device = city.segments[0].counter_id
    skewed = faults.clock_skew(readings, device, -3600.0)
    moved = [
        (a.observed_at - b.observed_at).total_seconds()
        for a, b in zip(skewed, readings, strict=True)
        if a.device_id == device
    ]
    assert moved and set(moved) == {-3600.0}
    assert [r for r in skewed if r.device_id != device] == [
        r for r in readings if r.device_id != device
    ]


def test_duplicates_and_out_of_order_messages(city: City, readings: list[Reading]) -> None:
    device = city.lots[0].device_id
    messages = make_packer(city, TOPICS, 60.0).pack(readings, SequenceBook())
    mine = [m for m in messages if m.device_id == device]
    doubled = [m for m in faults.duplicate_bursts(messages, device) if m.device_id == device]
    assert len(doubled) > len(mine)
    assert len({m.payload for m in doubled}) == len(mine)
    shuffled = [m for m in faults.out_of_order(messages, device, WINDOW) if m.device_id == device]
    seqs = [_first_seq(m) for m in shuffled]
    assert seqs != sorted(seqs)
    assert sorted(seqs) == [_first_seq(m) for m in mine]


def _first_seq(message: Outbound) -> int:
    parsed = TOPICS.parse(message.topic)
    assert isinstance(parsed, DeviceTopic) and parsed.channel.stream is not None
    seq = decode_readings(message.payload, message.device_id, parsed.channel.stream).readings[0].seq
    assert seq is not None
    return seq


def test_malformed_payloads_are_rejected_by_the_decoder() -> None:
    for bad in faults.malformed_payloads(START):
        if bad.whole_pack_rejected:
            with pytest.raises(PayloadError):
                decode_readings(bad.payload, "lot-001-gw", Stream.PARKING)
        else:
            result = decode_readings(bad.payload, "lot-001-gw", Stream.PARKING)
            assert result.readings == [] and len(result.rejections) == 1, bad.problem


def test_offline_gateway_goes_silent_then_drains_in_order(
    city: City, readings: list[Reading]
) -> None:
    device = city.lots[0].device_id
    messages = make_packer(city, TOPICS, 60.0).pack(readings, SequenceBook())
    status = TOPICS.device(city.site, device, Channel.STATUS)
    result = faults.gateway_offline(messages, device, WINDOW, status)
    mine = [m for m in result if m.device_id == device]
    assert not [m for m in mine if WINDOW.start < m.send_at < WINDOW.end]
    states = [json.loads(m.payload)[0] for m in mine if m.topic == status]
    online = [state["vb"] for state in states if state["n"] == "online"]
    assert online == [False, True]
    data = [m for m in mine if b'"online"' not in m.payload]
    seqs = [_first_seq(m) for m in data]
    assert seqs == sorted(seqs)
    burst = [m for m in data if WINDOW.end <= m.send_at < WINDOW.end + 60]
    held = [
        m for m in messages if m.device_id == device and WINDOW.start <= m.send_at <= WINDOW.end
    ]
    assert len(burst) == len(held) >= 2


def test_scenario_with_every_fault_builds_decodable_messages(city: City) -> None:
    orders = [FaultOrder(name) for name in ("stuck", "duplicates", "malformed", "offline")]
    messages = build(city, Calendar(seed=21), TOPICS, SequenceBook(), orders, start=START, end=END)
    rejected = 0
    for message in messages:
        parsed = TOPICS.parse(message.topic)
        assert isinstance(parsed, DeviceTopic)
        stream = parsed.channel.stream
        assert stream is not None
        try:
            rejected += len(decode_readings(message.payload, parsed.device_id, stream).rejections)
        except PayloadError:
            rejected += 1
    assert rejected >= 3
    assert [m.send_at for m in messages] == sorted(m.send_at for m in messages)
