"""Real edge agents driven by the city models publish what the models say, debounced."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from edge.config import AgentConfig, TrafficSection
from edge.drivers import PRESENCE, VEHICLE, SensorDriver
from edge.processing import TrafficCounter
from harness.edge import ingest_secret
from harness.ingest import ingest_thread
from simulators.agents import AgentFleet, CityDriver, agent_config
from simulators.city import City, CitySpec, generate_city
from simulators.demand import Calendar
from simulators.registry_file import registry_tables
from store.registry import store_registry
from streetsense.config import Settings
from streetsense.confirm import device_key, key_text
from streetsense.readings import Reading, decode_readings
from streetsense.registry import LotKind, Registry, parse_registry
from streetsense.topics import DeviceTopic, Topics
from tests.simulators.conftest import Collector

TUESDAY_RUSH = datetime(2026, 11, 17, 7, 45, tzinfo=UTC).timestamp()


def test_city_driver_is_a_sensor_driver_with_raw_events() -> None:
    city = generate_city(CitySpec(seed=8, lots=4, segments=2))
    segment = city.segments[0]
    driver = CityDriver(city, Calendar(seed=8), segment.counter_id, speed=600.0, start=TUESDAY_RUSH)
    assert isinstance(driver, SensorDriver)
    events = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        events += driver.poll(0.05)
    assert {e.name for e in events} == {VEHICLE}
    assert len(events) > 50
    assert {e.sub_id for e in events} <= set(segment.lane_ids)
    assert all(0 < e.duration < 5 and e.value > 0 for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    gateway = next(lot for lot in city.lots if lot.kind is LotKind.ON_STREET)
    # Switched on between two minutes (as the demo's agents are): every spot's state as found.
    switched_on = TUESDAY_RUSH + 37.5
    spots = CityDriver(city, Calendar(seed=8), gateway.device_id, speed=600.0, start=switched_on)
    first = spots.poll(0.1)
    assert {e.name for e in first} == {PRESENCE}
    assert {e.sub_id for e in first} == set(gateway.sensors)
    assert min(e.at for e in first) == switched_on


def test_city_driver_hands_every_vehicle_over_before_its_interval_is_sent() -> None:
    # The model counts traffic in 5-minute intervals; the agent sends 1-minute ones 2 s after
    # they end. A driver that made an interval's vehicles only once the model had run past the
    # interval's end handed most of them over after the agent had sent their minute as zero.
    city = generate_city(CitySpec(seed=8, lots=4, segments=2))
    segment = city.segments[0]
    seconds = [0.0]
    driver = CityDriver(
        city, Calendar(seed=8), segment.counter_id, start=TUESDAY_RUSH,
        monotonic=lambda: seconds[0],
    )  # fmt: skip
    counter = TrafficCounter(TrafficSection(interval_s=60, grace_s=2.0), since=TUESDAY_RUSH)
    counts = []
    for _ in range(30 * 60):  # half an hour of device time, a second at a time
        seconds[0] += 1.0
        for event in driver.poll(0.0):
            counter.observe(event)
        counts += [row for row in counter.due(driver.now()) if row[2] == "vehicle_count"]
    assert (counter.late, counter.dropped) == (0, 0)
    assert len(counts) >= 28 * len(segment.lane_ids)
    assert all(value > 0 for *_, value, _revision in counts)  # the morning rush is never empty


def test_real_agents_publish_debounced_spots_counted_lanes_and_lamps(
    mqtt_settings: Settings, topics: Topics, collector: Collector, tmp_path: Path
) -> None:
    city = generate_city(CitySpec(seed=8, lots=4, segments=2))
    calendar = Calendar(seed=8)
    gateway = next(lot for lot in city.lots if lot.kind is LotKind.ON_STREET)
    segment = city.segments[0]
    devices = [gateway.device_id, segment.counter_id, segment.lamp_ids[0]]
    members: list[tuple[AgentConfig, SensorDriver]] = []
    for device in devices:
        config = agent_config(
            mqtt_settings, city.site, device, tmp_path,
            parking={"occupied_after_s": 5.0, "free_after_s": 5.0},
            traffic={"interval_s": 60, "grace_s": 0.0},
            buffer={"synchronous": "normal"},
        )  # fmt: skip
        driver = CityDriver(city, calendar, device, speed=120.0, start=TUESDAY_RUSH)
        members.append((config, driver))
    with AgentFleet(members):
        deadline = time.monotonic() + 30
        by_device = _gather(collector, topics, devices)
        while time.monotonic() < deadline and not _complete(by_device, devices):
            time.sleep(0.2)
            by_device = _gather(collector, topics, devices)
    spots = [r for r in by_device[gateway.device_id] if r.kind == "occupied"]
    assert {r.sub_id for r in spots} == set(gateway.sensors)
    counts = [r for r in by_device[segment.counter_id] if r.kind == "vehicle_count"]
    assert counts and {r.sub_id for r in counts} <= set(segment.lane_ids)
    assert sum(r.value for r in counts) > 20
    lamp = {r.kind for r in by_device[segment.lamp_ids[0]]}
    assert {"lamp_power", "lamp_dimming"} <= lamp
    for readings in by_device.values():
        seqs = [r.seq for r in readings if r.seq is not None]
        assert seqs and min(seqs) >= 1


def _gather(collector: Collector, topics: Topics, devices: list[str]) -> dict[str, list[Reading]]:
    by_device: dict[str, list[Reading]] = defaultdict(list)
    for topic, payload in list(collector.received):
        parsed = topics.parse(topic)
        assert isinstance(parsed, DeviceTopic)
        if parsed.channel.stream is None or parsed.device_id not in devices:
            continue
        result = decode_readings(payload, parsed.device_id, parsed.channel.stream)
        assert result.rejections == []
        by_device[parsed.device_id] += result.readings
    return by_device


def _complete(by_device: dict[str, list[Reading]], devices: list[str]) -> bool:
    gateway, counter, lamp = devices
    counted = sum(r.value for r in by_device[counter] if r.kind == "vehicle_count")
    kinds = {r.kind for r in by_device[lamp]}
    return counted > 20 and {"lamp_power", "lamp_dimming"} <= kinds and bool(by_device[gateway])


def _recent_rush() -> float:
    """Return 07:45 UTC of the latest working day at least a day ago (inside ingest's window)."""
    day = datetime.now(UTC) - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day.replace(hour=7, minute=45, second=0, microsecond=0).timestamp()


def test_agents_through_ingest_store_every_confirmed_reading_once(
    settings: Settings, tmp_path: Path
) -> None:
    city = generate_city(CitySpec(seed=8, lots=4, segments=2))
    with psycopg.connect(settings.database.url) as conn:
        store_registry(conn, registry_of(city), "simulated city")
    gateway = next(lot for lot in city.lots if lot.kind is LotKind.ON_STREET)
    devices = [gateway.device_id, city.segments[0].counter_id]
    secret = ingest_secret(settings.database.url)
    (tmp_path / "keys").mkdir()
    for device in devices:  # where agent_config looks, as `streetsense registry key` writes
        (tmp_path / "keys" / f"{device}.key").write_text(key_text(device_key(secret, device)))
    start = _recent_rush()
    members = [
        (
            agent_config(
                settings, city.site, device, tmp_path,
                parking={"occupied_after_s": 5.0, "free_after_s": 5.0},
                traffic={"interval_s": 60, "grace_s": 0.0},
                buffer={"synchronous": "normal", "resend_timeout_s": 2.0},
            ),
            CityDriver(city, Calendar(seed=8), device, speed=120.0, start=start),
        )
        for device in devices
    ]  # fmt: skip
    with ingest_thread(settings, "sim-agents"):
        with AgentFleet(members) as fleet:
            paths = [agent.config.state_path for agent in fleet.agents]
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not all(_acked(p) >= 20 for p in paths):
                time.sleep(0.2)
        states = [json.loads(path.read_text()) for path in paths]
    with psycopg.connect(settings.database.url) as conn:
        for state in states:
            device, first, acked = state["device"], state["first_seq"], state["acked"]
            assert acked >= 20, state
            stored = conn.execute(
                "SELECT count(*), count(DISTINCT seq) FROM readings"
                " WHERE device_id = %s AND seq <= %s",
                (device, acked),
            ).fetchone()
            assert stored == (acked - first + 1, acked - first + 1)
            contiguous = conn.execute(
                "SELECT contiguous_seq FROM device_sequences WHERE device_id = %s", (device,)
            ).fetchone()
            assert contiguous is not None and contiguous[0] >= acked


def _acked(path: Path) -> int:
    try:
        return int(json.loads(path.read_text()).get("acked") or 0)
    except (OSError, ValueError):
        return 0


def registry_of(city: City) -> Registry:
    return parse_registry(registry_tables(city))
