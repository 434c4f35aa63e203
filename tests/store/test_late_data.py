"""Late data (issue 8, fault 8): late readings within the window update the rollups; duplicates
of old readings change nothing."""

from __future__ import annotations

from datetime import datetime

import psycopg

from store.rollups import refresh
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.store.support import at, load_city, spot, write

ROLLUPS = ("occupancy_5m", "occupancy_1h", "occupancy_1d", "flow_5m", "flow_1h", "flow_1d")


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Return every rollup row, sorted, then end the read transaction."""
    tables = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ROLLUPS}
    tables["lot_now"] = conn.execute("SELECT * FROM lot_now ORDER BY 1").fetchall()
    conn.commit()
    return tables


def rebuilt(
    conn: psycopg.Connection, settings: Settings, until: datetime
) -> dict[str, list[tuple[object, ...]]]:
    """Return the rollups built again in one go from all readings."""
    conn.execute("TRUNCATE occupancy_5m, occupancy_1h, occupancy_1d, flow_5m, flow_1h, flow_1d")
    conn.execute("TRUNCATE occupancy_now, rollup_state")
    conn.commit()
    refresh(conn, settings, until=until)
    return snapshot(conn)


def first_batch() -> list[Reading]:
    """Return readings delivered on time."""
    return [
        spot("s1", 0, True),
        spot("s1", 20, False),
        Reading("loop", "vehicle_count", at(1), 10.0, "l1"),
        Reading("loop", "mean_speed", at(1), 50.0, "l1"),
    ]


def late_batch() -> list[Reading]:
    """Return readings a buffering agent delivers late, observed inside refreshed buckets."""
    return [
        spot("s2", 5, True),
        spot("s2", 12.5, False),
        Reading("loop", "vehicle_count", at(2), 30.0, "l2"),
        Reading("loop", "mean_speed", at(2), 30.0, "l2"),
    ]


def test_late_readings_update_rollups(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    write(db, first_batch(), received_at=at(1))
    refresh(db, settings, until=at(30))
    on_time = snapshot(db)
    write(db, late_batch(), received_at=at(40))
    result = refresh(db, settings, until=at(30))
    assert (result.lots, result.segments) == (1, 1)
    late = snapshot(db)
    market = {row[1]: row[2] for row in late["occupancy_5m"] if row[0] == "market"}
    assert [market[at(m)] for m in (0, 5, 10, 15, 20, 25)] == [1.0, 2.0, 1.5, 1.0, 0.0, 0.0]
    assert late["occupancy_5m"] != on_time["occupancy_5m"]
    assert late["flow_5m"][0][2:5] == (40.0, (10 * 50 + 30 * 30) / 40, None)
    assert rebuilt(db, settings, until=at(30)) == late


def test_duplicates_leave_rollups_unchanged(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    write(db, first_batch() + late_batch(), received_at=at(1))
    refresh(db, settings, until=at(30))
    before = snapshot(db)
    assert write(db, first_batch() + late_batch(), received_at=at(50)) == 0
    refresh(db, settings, until=at(30))
    assert snapshot(db) == before


def test_since_rebuilds_history_older_than_the_window(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    month = 60 * 24 * 30
    write(db, [spot("s1", 0, True)], received_at=at(month))
    refresh(db, settings, until=at(10))
    # a bulk import of old history, observed long before the late window of its receipt
    write(db, [spot("s2", 0, True)], received_at=at(month + 1))
    refresh(db, settings, until=at(10))
    assert snapshot(db)["occupancy_5m"][0][2] == 1.0
    refresh(db, settings, until=at(10), since=at(0))
    assert snapshot(db)["occupancy_5m"][0][2] == 2.0
