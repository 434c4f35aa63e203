"""A small simulated city with three days of readings, written through the public writers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from store.registry import store_registry
from store.writes import Rejection, write_readings, write_rejections
from streetsense.readings import Reading
from streetsense.registry import parse_registry

STEP = timedelta(minutes=5)
SPOT_LOTS = {"old-town-a": 6, "old-town-b": 8, "harbour-kerb": 10}
COUNTER_LOTS = {"harbour-garage": 120, "station-garage": 300, "mall-garage": 200}
SEGMENTS = {"ring-north": 50.0, "ring-south": 50.0, "harbour-road": 30.0, "bypass": 80.0}
FULL_LOT = "station-garage"  # ends the data at 97% occupancy
JAMMED = "ring-south"  # ends the data at a crawl


@dataclass(frozen=True, slots=True)
class City:
    """What was generated: the window and the counts a test may check against."""

    start: datetime
    end: datetime
    readings: int
    rejections: int


def registry_data() -> dict[str, Any]:
    """Return the registry tables of the test city."""
    lots, devices, spots, segments = [], [], [], []
    for index, (lot, spaces) in enumerate(SPOT_LOTS.items()):
        lots.append(
            _lot(lot, "on_street", spaces, index, "old-town" if "old" in lot else "harbour")
        )
        devices.append({"id": f"{lot}-gw", "site": "centre", "kind": "parking", "lot": lot})
        spots += [
            {"id": f"{lot}-{n}", "lot": lot, "device": f"{lot}-gw", "sensor": f"s{n}"}
            for n in range(spaces)
        ]
    for index, (lot, capacity) in enumerate(COUNTER_LOTS.items(), start=len(SPOT_LOTS)):
        lots.append(_lot(lot, "off_street", capacity, index, lot.split("-")[0]))
        devices.append({"id": f"{lot}-counter", "site": "centre", "kind": "counter", "lot": lot})
    for index, (segment, limit) in enumerate(SEGMENTS.items()):
        lon, lat = 10.19 + 0.01 * index, 56.16
        segments.append({
            "id": segment, "site": "centre", "name": segment.replace("-", " ").title(),
            "direction": "eastbound", "coordinates": [[lon, lat], [lon + 0.008, lat + 0.002]],
            "speed_limit_kmh": limit, "capacity_vph": 1800, "area": segment.split("-")[0],
        })  # fmt: skip
        devices.append({"id": f"{segment}-counter", "site": "centre", "kind": "traffic",
                        "segment": segment})  # fmt: skip
    devices.append({"id": "lamp-0001", "site": "centre", "kind": "light"})
    return {
        "site": [{"id": "centre", "name": "City centre"}],
        "lot": lots, "device": devices, "spot": spots, "segment": segments,
    }  # fmt: skip


def _lot(lot: str, kind: str, capacity: int, index: int, area: str) -> dict[str, Any]:
    return {
        "id": lot, "site": "centre", "name": lot.replace("-", " ").title(), "kind": kind,
        "capacity": capacity, "lat": 56.15 + 0.003 * index, "lon": 10.20 + 0.002 * index,
        "area": area,
    }  # fmt: skip


def demand(moment: datetime) -> float:
    """Return a daily demand shape between 0.1 and 0.9, highest in the early afternoon."""
    hour = moment.hour + moment.minute / 60
    return 0.5 - 0.4 * math.cos(2 * math.pi * (hour - 2) / 24)


def fill(conn: psycopg.Connection, end: datetime, days: int = 3, seed: int = 7) -> City:
    """Store the registry and `days` of readings ending at `end`; commit them."""
    rng = random.Random(seed)
    store_registry(conn, parse_registry(registry_data()), "tests/dashboard")
    start = end - timedelta(days=days)
    times = [start + i * STEP for i in range(int((end - start) / STEP))]
    readings = _counters(times, rng) + _spots(times, rng) + _traffic(times, rng)
    with conn.transaction():
        for first in range(0, len(readings), 20_000):
            chunk = readings[first : first + 20_000]
            write_readings(conn, chunk, [r.observed_at for r in chunk])
        rejections = _rejections(end)
        write_rejections(conn, rejections, 4096)
    return City(start, end, len(readings), len(rejections))


def _counters(times: list[datetime], rng: random.Random) -> list[Reading]:
    out = []
    for lot, capacity in COUNTER_LOTS.items():
        for moment in times:
            share = 0.97 if lot == FULL_LOT and moment == times[-1] else demand(moment)
            value = round(capacity * min(1.0, share + rng.uniform(-0.03, 0.03)))
            out.append(Reading(f"{lot}-counter", "occupied_spaces", moment, float(value)))
    return out


def _spots(times: list[datetime], rng: random.Random) -> list[Reading]:
    out = []
    for lot, spaces in SPOT_LOTS.items():
        for n in range(spaces):
            state = rng.random() < 0.5
            out.append(Reading(f"{lot}-gw", "occupied", times[0], float(state), sub_id=f"s{n}"))
            for moment in times[1:]:
                # Arrivals follow demand; a stay lasts about an hour on average.
                flip = rng.random() < (1 / 12 if state else demand(moment) / 6)
                if flip:
                    state = not state
                    at = moment + timedelta(seconds=rng.randint(0, 299))
                    out.append(Reading(f"{lot}-gw", "occupied", at, float(state), sub_id=f"s{n}"))
    return out


def _traffic(times: list[datetime], rng: random.Random) -> list[Reading]:
    out = []
    for segment, limit in SEGMENTS.items():
        device = f"{segment}-counter"
        for moment in times:
            vehicles = round(150 * demand(moment) + rng.uniform(0, 10))
            speed = limit * (1.05 - 0.5 * demand(moment)) * rng.uniform(0.95, 1.05)
            if segment == JAMMED and moment >= times[-3]:
                speed = limit * 0.2
            out += [
                Reading(device, "vehicle_count", moment, float(vehicles)),
                Reading(device, "mean_speed", moment, round(speed, 1)),
                Reading(device, "detector_occupancy", moment, round(60 * demand(moment), 1)),
            ]
    return out


def _rejections(end: datetime) -> list[Rejection]:
    topic = "streetsense/v1/centre/{}/parking"
    bad = [("bad_payload", "ring-north-counter", b"{not json"),
           ("bad_payload", "bypass-counter", b"\x00\x01"),
           ("out_of_range", "harbour-garage-counter", b'[{"n":"occupied_spaces","v":-4}]'),
    ]  # fmt: skip
    return [
        Rejection(end - timedelta(minutes=10 * i), topic.format(device), code,
                  f"{code} in test data", payload, device_id=device)
        for i, (code, device, payload) in enumerate(bad)
    ]  # fmt: skip


def now_floor() -> datetime:
    """Return the start of the current 5-minute bucket in UTC."""
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
