"""Fill a database with the simulator's city: registry, readings, rollups and device state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.registry_file import registry_tables
from simulators.world import CitySimulation
from store.device_state import DeviceStateUpdate, upsert_device_state
from store.registry import store_registry
from store.rollups import refresh
from store.writes import Rejection, write_readings, write_rejections
from streetsense.config import Settings
from streetsense.registry import parse_registry

TIMEZONE = "Europe/Copenhagen"


@dataclass(frozen=True, slots=True)
class Filled:
    """What was stored, for tests to check figures against."""

    start: datetime
    end: datetime
    readings: int
    devices: list[str]
    offline: list[str]
    rejections: int


def fill(conn: psycopg.Connection, settings: Settings, end: datetime, days: int = 3) -> Filled:
    """Simulate `days` of a small city up to `end`, store it all and refresh the rollups."""
    city = generate_city(CitySpec(seed=5, lots=8, segments=5, lamps_per_segment=1))
    store_registry(conn, parse_registry(registry_tables(city)), "tests/dashboard")
    start = end - timedelta(days=days)
    simulation = CitySimulation(city, Calendar(seed=5, timezone=TIMEZONE), start.timestamp())
    readings = simulation.advance(end.timestamp())
    devices = [device for device, _ in city.devices()]
    # Every fourth device is offline, one with a low battery and one that dropped readings.
    offline = devices[::4]
    with conn.transaction():
        for first in range(0, len(readings), 50_000):
            chunk = readings[first : first + 50_000]
            write_readings(conn, chunk, [r.observed_at for r in chunk])
        upsert_device_state(conn, [_state(d, city.site, end, d not in offline, i)
                                   for i, d in enumerate(devices)])  # fmt: skip
        rejections = _rejections(devices, end)
        write_rejections(conn, rejections, 4096)
    conn.commit()
    refresh(conn, settings, until=end)
    return Filled(start, end, len(readings), devices, offline, len(rejections))


def _state(device: str, site: str, end: datetime, online: bool, index: int) -> DeviceStateUpdate:
    seen = end - timedelta(minutes=1 if online else 90 + index)
    status = {
        "battery": 3.1 if index == 1 else 3.7,
        "rssi": -60.0 - index,
        "buffer_depth": float(index % 3),
        "buffer_dropped": 12.0 if index == 2 else 0.0,
    }
    return DeviceStateUpdate(device, site, seen, online, seen, status, seen, 100 + index, 0)


def _rejections(devices: list[str], end: datetime) -> list[Rejection]:
    bad = [("bad_payload", b"{not json"), ("bad_payload", b"\x00\x01"),
           ("out_of_range", b'[{"n":"occupied_spaces","v":-4}]')]  # fmt: skip
    return [
        Rejection(end - timedelta(minutes=10 * (i + 1)), f"streetsense/v1/city/{devices[i]}/status",
                  code, f"{code}: test message {i}", payload, device_id=devices[i])
        for i, (code, payload) in enumerate(bad)
    ]  # fmt: skip


def bucket_now() -> datetime:
    """Return the start of the current 5-minute bucket in UTC."""
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
