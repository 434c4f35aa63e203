"""A small city for store tests: one spot-sensored lot, one counted lot, one two-lane segment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg

from store.registry import store_registry
from store.writes import write_readings
from streetsense.readings import Reading
from streetsense.registry import Registry, parse_registry

# Buckets of a past day, so every test is deterministic whatever the clock says.
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def city() -> Registry:
    """Return the test city's registry."""
    site = {"id": "centre", "name": "Centre"}
    lot = {"site": "centre", "kind": "on_street", "lat": 56.0, "lon": 10.0}
    return parse_registry({
        "site": [site],
        "lot": [
            {**lot, "id": "market", "name": "Market", "capacity": 4},
            {**lot, "id": "garage", "name": "Garage", "capacity": 200, "kind": "off_street"},
        ],
        "device": [
            {"id": "gw", "site": "centre", "kind": "parking", "lot": "market"},
            {"id": "counter", "site": "centre", "kind": "counter", "lot": "garage"},
            {"id": "loop", "site": "centre", "kind": "traffic", "segment": "ring"},
            {"id": "radar", "site": "centre", "kind": "traffic", "segment": "ring"},
        ],
        "spot": [
            {"id": f"m{i}", "lot": "market", "device": "gw", "sensor": f"s{i}"}
            for i in range(1, 5)
        ],
        "segment": [
            {
                "id": "ring",
                "site": "centre",
                "name": "Ring",
                "direction": "east",
                "coordinates": [[10.0, 56.0], [10.1, 56.0]],
                "speed_limit_kmh": 50,
            }
        ],
    })  # fmt: skip


def load_city(conn: psycopg.Connection) -> None:
    """Store the test city's registry."""
    store_registry(conn, city(), "tests")


def write(
    conn: psycopg.Connection, readings: Sequence[Reading], received_at: datetime | None = None
) -> int:
    """Write readings in one transaction, received now (or at `received_at`)."""
    received = received_at or datetime.now(UTC)
    with conn.transaction():
        return write_readings(conn, readings, [received] * len(readings))


def spot(sensor: str, minutes: float, occupied: bool) -> Reading:
    """Return a spot event of the market gateway, `minutes` after T0."""
    return Reading("gw", "occupied", at(minutes), 1.0 if occupied else 0.0, sensor)


def at(minutes: float) -> datetime:
    """Return T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)
