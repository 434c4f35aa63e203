"""A small city for alert tests, written through the same store calls ingest and refresh use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from store import rollups
from store.device_state import DeviceStateUpdate, upsert_device_state
from store.registry import store_registry
from store.writes import write_readings
from streetsense.config import Settings
from streetsense.readings import Reading
from streetsense.registry import parse_registry

# A past day: tests pass their own `now`, whatever the clock says.
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """Return T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def load_city(conn: psycopg.Connection, north_devices: int = 0) -> None:
    """Store a city: a counted garage and a spot-sensored market in old-town, a ring road, and
    `north_devices` spot gateways on one lot in the north (for storms)."""
    lot = {"site": "centre", "kind": "off_street", "lat": 56.0, "lon": 10.0}
    registry = parse_registry({
        "site": [{"id": "centre", "name": "Centre"}],
        "lot": [
            {**lot, "id": "garage", "name": "Garage", "capacity": 100, "area": "old-town"},
            {**lot, "id": "market", "name": "Market", "capacity": 4, "area": "old-town",
             "kind": "on_street"},
            {**lot, "id": "north-lot", "name": "North", "capacity": max(north_devices, 1),
             "area": "north", "kind": "on_street"},
        ],
        "device": [
            {"id": "counter", "site": "centre", "kind": "counter", "lot": "garage"},
            {"id": "gw", "site": "centre", "kind": "parking", "lot": "market"},
            {"id": "loop", "site": "centre", "kind": "traffic", "segment": "ring"},
            *({"id": f"n{i:04d}", "site": "centre", "kind": "parking", "lot": "north-lot"}
              for i in range(north_devices)),
        ],
        "spot": [
            {"id": f"m{i}", "lot": "market", "device": "gw", "sensor": f"s{i}"}
            for i in range(1, 5)
        ],
        "segment": [{
            "id": "ring", "site": "centre", "name": "Ring", "area": "old-town",
            "coordinates": [[10.0, 56.0], [10.1, 56.0]], "speed_limit_kmh": 50,
            "capacity_vph": 1800,
        }],
    })  # fmt: skip
    store_registry(conn, registry, "tests")
    conn.commit()


def write(conn: psycopg.Connection, readings: Sequence[Reading], received_at: datetime) -> None:
    """Write readings in one transaction, as received at `received_at`."""
    with conn.transaction():
        write_readings(conn, readings, [received_at] * len(readings))


def garage_count(conn: psycopg.Connection, settings: Settings, minutes: float, cars: int) -> None:
    """Report the garage's count at T0 + minutes and fold it into the rollups."""
    conn.commit()
    write(conn, [Reading("counter", "occupied_spaces", at(minutes), float(cars))], at(minutes))
    conn.commit()
    conn.autocommit = True
    # `since`: the test day lies beyond the late-data window of the real clock
    rollups.refresh(conn, settings, until=at(minutes + 0.5), since=T0 - timedelta(hours=1))
    conn.autocommit = False


def health(
    conn: psycopg.Connection,
    devices: Sequence[str],
    seen: datetime,
    *,
    online: bool = True,
    **status: float,
) -> None:
    """Record what ingest would after a batch from these devices, and commit."""
    conn.commit()  # end any read the test left open, so this is a transaction of its own
    with conn.transaction():
        upsert_device_state(
            conn,
            [
                DeviceStateUpdate(d, "centre", seen, online, seen, dict(status),
                                  seen if status else None, 1, 0)
                for d in devices
            ],
        )  # fmt: skip
