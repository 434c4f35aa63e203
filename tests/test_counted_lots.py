"""A lot with a gate counter and spot sensors is counted once, by its counter, in the rollups
as in the feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from feeds.live import LiveParking
from store import feeds_reads
from store.registry import store_registry
from store.rollups import refresh
from store.writes import write_readings
from streetsense.config import Settings
from streetsense.readings import Reading
from streetsense.registry import parse_registry

CITY: dict[str, list[dict[str, object]]] = {
    "site": [{"id": "c"}],
    "lot": [{"id": "garage", "site": "c", "kind": "off_street", "capacity": 50, "lat": 1,
             "lon": 2, "spaces": {"disabled": 2}}],
    "device": [
        {"id": "gate", "site": "c", "kind": "counter", "lot": "garage"},
        {"id": "gw", "site": "c", "kind": "parking", "lot": "garage"},
    ],
    "spot": [
        {"id": "d1", "lot": "garage", "device": "gw", "sensor": "a", "category": "disabled"},
        {"id": "d2", "lot": "garage", "device": "gw", "sensor": "b", "category": "disabled"},
    ],
}  # fmt: skip


def test_a_counted_lot_is_not_double_counted(db: psycopg.Connection, settings: Settings) -> None:
    store_registry(db, parse_registry(CITY), "tests")
    now = datetime.now(UTC)
    readings = [
        Reading("gate", "occupied_spaces", now - timedelta(minutes=3), 20.0),
        Reading("gw", "occupied", now - timedelta(minutes=3), 1.0, sub_id="a"),
        Reading("gw", "occupied", now - timedelta(minutes=3), 1.0, sub_id="b"),
    ]
    with db.transaction():
        write_readings(db, readings, [now] * len(readings))
    refresh(db, settings)
    row = db.execute("SELECT occupied FROM lot_now WHERE lot_id = 'garage'").fetchone()
    assert row == (20.0,)  # the old view summed the counter and the sensors: 22
    found = LiveParking(feeds_reads.lot_parking(db)).lot("garage")
    assert found is not None
    assert (found.occupied, found.sensed, found.categories) == (20.0, 2.0, {"disabled": 2.0})
