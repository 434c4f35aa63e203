"""Rollups: time-weighted lot occupancy from spot events and counters; flow per segment."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.rollups import refresh
from streetsense.cli import main
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.store.support import T0, at, load_city, spot, write


def occupancy(conn: psycopg.Connection, table: str, lot: str) -> dict[int, tuple[float, int]]:
    """Return {minutes after T0: (occupied, samples)} of one lot."""
    rows = conn.execute(
        f"SELECT bucket, occupied, samples FROM {table} WHERE lot_id = %s ORDER BY bucket",
        (lot,),
    ).fetchall()
    return {int((b - T0) / timedelta(minutes=1)): (round(o, 6), s) for b, o, s in rows}


def test_spot_state_persists_and_is_time_weighted(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    write(db, [
        spot("s1", 0, True),     # s1 occupied for the whole first 10 minutes
        spot("s2", 2.5, True),   # s2 occupied from half of the first bucket
        spot("s2", 7, False),    # ... until 2 minutes into the second bucket
        spot("s3", 6, True),
        spot("s3", 6, True),     # a duplicate is written once
    ])  # fmt: skip
    result = refresh(db, settings, until=at(15))
    assert result.lots == 1
    got = occupancy(db, "occupancy_5m", "market")
    assert got == {
        0: (1.5, 2),  # s1 full + s2 half
        5: (1 + 0.4 + 0.8, 2),  # s1 + s2 2/5 + s3 4/5
        10: (2.0, 0),  # nothing new: states persist
    }
    row = db.execute(
        "SELECT capacity, occupancy FROM occupancy_5m WHERE lot_id = 'market' AND bucket = %s",
        (T0,),
    ).fetchone()
    assert row == (4, pytest.approx(1.5 / 4))
    hourly = occupancy(db, "occupancy_1h", "market")
    assert hourly == {0: (round((1.5 + 2.2 + 2.0) / 3, 6), 4)}
    now = db.execute("SELECT occupied, observed_at FROM lot_now WHERE lot_id = 'market'").fetchone()
    assert now == (2.0, at(7))


def test_counter_readings_persist_too(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    write(db, [
        Reading("counter", "occupied_spaces", at(0), 100.0),
        Reading("counter", "occupied_spaces", at(1), 110.0),
    ])  # fmt: skip
    refresh(db, settings, until=at(10))
    assert occupancy(db, "occupancy_5m", "garage") == {0: (108.0, 2), 5: (110.0, 0)}


def test_carry_forward_extends_lots_on_later_refresh(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    write(db, [spot("s1", 0, True)])
    refresh(db, settings, until=at(5))
    refresh(db, settings, until=at(12.5))
    assert occupancy(db, "occupancy_5m", "market") == {0: (1.0, 1), 5: (1.0, 0), 10: (1.0, 0)}


def test_flow_sums_lanes_and_weights_speed(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    write(db, [
        Reading("loop", "vehicle_count", at(1), 10.0, "l1"),
        Reading("loop", "mean_speed", at(1), 40.0, "l1"),
        Reading("loop", "detector_occupancy", at(1), 10.0, "l1"),
        Reading("loop", "vehicle_count", at(1), 30.0, "l2"),
        Reading("loop", "mean_speed", at(1), 60.0, "l2"),
        Reading("loop", "detector_occupancy", at(1), 30.0, "l2"),
        Reading("radar", "vehicle_count", at(2), 0.0),
        Reading("radar", "mean_speed", at(2), 90.0),   # no vehicles: no weight
        Reading("loop", "vehicle_count", at(61), 5.0, "l1"),
    ])  # fmt: skip
    result = refresh(db, settings, until=at(70))
    assert result.segments == 1
    rows = db.execute(
        "SELECT bucket, vehicle_count, mean_speed, detector_occupancy, samples FROM flow_5m"
        " WHERE segment_id = 'ring' ORDER BY bucket"
    ).fetchall()
    assert rows == [(T0, 40.0, 55.0, 20.0, 8), (at(60), 5.0, None, None, 1)]
    hourly = db.execute(
        "SELECT vehicle_count, mean_speed, samples FROM flow_1h WHERE bucket = %s", (T0,)
    ).fetchone()
    assert hourly == (40.0, 55.0, 8)
    daily = db.execute("SELECT vehicle_count, samples FROM flow_1d").fetchall()
    assert daily == [(45.0, 9)]


def test_refresh_twice_changes_nothing(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    write(db, [spot("s1", 0, True), Reading("loop", "vehicle_count", at(1), 7.0, "l1")])
    refresh(db, settings, until=at(10))
    before = db.execute("SELECT * FROM occupancy_5m ORDER BY 1, 2").fetchall()
    db.commit()
    again = refresh(db, settings, until=at(10))
    assert db.execute("SELECT * FROM occupancy_5m ORDER BY 1, 2").fetchall() == before
    assert again.readings <= 2  # only the commit margin is rescanned


def test_concurrent_refreshes_agree(database_url: str, settings: Settings) -> None:
    with psycopg.connect(database_url) as conn:
        load_city(conn)
        write(conn, [spot(f"s{i}", i, True) for i in range(1, 5)])
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(database_url) as conn:
                refresh(conn, settings, until=at(10))
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(database_url) as conn:
        assert occupancy(conn, "occupancy_5m", "market") == {0: (2.0, 4), 5: (4.0, 0)}


def test_analyst_views_locate_readings(db: psycopg.Connection) -> None:
    load_city(db)
    write(db, [spot("s2", 0, True), Reading("loop", "vehicle_count", at(1), 3.0, "l1")])
    rows = db.execute(
        "SELECT device_id, lot_id, spot_id, segment_id FROM readings_located ORDER BY 1"
    ).fetchall()
    assert rows == [("gw", "market", "m2", None), ("loop", None, None, "ring")]


def test_segment_now_is_the_latest_complete_bucket(
    db: psycopg.Connection, settings: Settings, database_url: str
) -> None:
    load_city(db)
    # The clock is the view's now(): the start of a transaction opened first, which the view
    # reads at the end, so a bucket boundary passing meanwhile changes nothing.
    with psycopg.connect(database_url) as clock:
        now = clock.execute("SELECT now()").fetchone()[0]
        current = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
        write(db, [
            Reading("loop", "vehicle_count", current - timedelta(minutes=9), 4.0, "l1"),
            Reading("loop", "vehicle_count", current - timedelta(minutes=4), 6.0, "l1"),
            Reading("loop", "vehicle_count", current + timedelta(seconds=1), 99.0, "l1"),  # running
        ])  # fmt: skip
        refresh(db, settings)
        row = clock.execute("SELECT bucket, vehicle_count FROM segment_now").fetchall()
    assert row == [(current - timedelta(minutes=5), 6.0)]


def test_db_refresh_command(
    database_url: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETSENSE_DATABASE_URL", database_url)
    monkeypatch.setenv("STREETSENSE_DATABASE_TIMESCALE", "off")
    load_city(db)
    write(db, [spot("s1", 0, True)])
    assert main(["db", "refresh"]) == 0
    assert db.execute("SELECT count(*) FROM lot_now").fetchone() == (1,)
