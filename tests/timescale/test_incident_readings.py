"""TimescaleDB: the traffic incident rule reads what it reads on plain PostgreSQL, and fires.

The rule reads raw 1-minute readings (a hypertable there), the segments with a reading beyond
its bound, the weekly history from flow_5m (continuous aggregates there) and the speed band;
the same city and readings are written to both backends and each read, then an evaluation
through the engine, must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from alerts.engine import run_once
from alerts.rules import parse_rules
from store import alerts_inputs, rollups
from store.rollups_writes import insert_readings
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.alerts.support import T0, at, load_city, write
from tests.timescale.test_timescale import assert_same, timescale_settings

pytestmark = pytest.mark.timescale

INCIDENT = parse_rules('[[rule]]\nname = "incident"\nkind = "traffic_incident"\n')
EVALUATION_TABLES = "alerts, alert_events, alert_outbox, forecast_runs, forecasts"


@pytest.fixture
def tsdb_city(tsdb: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """Return the TimescaleDB connection with the alert tests' city and no alerts or runs."""
    tsdb.execute(f"TRUNCATE {EVALUATION_TABLES} CASCADE")
    load_city(tsdb)
    yield tsdb
    tsdb.execute(f"TRUNCATE {EVALUATION_TABLES} CASCADE")


def lane_minute(minute: int, lane: str, vehicles: float, speed: float) -> list[Reading]:
    """Return one lane's minute of the ring's loop, detectors 10% occupied."""
    values = (("vehicle_count", vehicles), ("mean_speed", speed), ("detector_occupancy", 10.0))
    return [Reading("loop", kind, at(minute), value, lane) for kind, value in values]


def queue_on_the_ring() -> list[Reading]:
    """Return two lanes counting every minute (720 veh/h on the 1800 veh/h ring, so a queue
    is an incident's, not the road's own bottleneck): 48 km/h, then from minute 30 a queue at
    15 km/h on the busy lane; and 5-minute history at this time in three past weeks, slow in
    one of them only."""
    readings = []
    for minute in range(10, 45):
        queued = minute >= 30
        readings += lane_minute(minute, "l1", 10.0, 15.0 if queued else 48.0)
        readings += lane_minute(minute, "l2", 2.0, 45.0 if queued else 48.0)
    for week, speed in ((1, 21.0), (2, 47.0), (3, 46.0)):
        for minute in range(0, 60, 5):
            moment = at(minute) - timedelta(weeks=week)
            readings += [Reading("loop", "vehicle_count", moment, 100.0, "l1"),
                         Reading("loop", "mean_speed", moment, speed, "l1")]  # fmt: skip
    return readings


def speed_run(conn: psycopg.Connection) -> None:
    """Store a speed forecast run whose 80% band's lower edge is 40 km/h (row by row: PGlite
    has no COPY, which store.forecasts.write_run uses)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO forecast_runs (stream, step_seconds, issued_at, data_start, data_end,"
            " horizon, model, series) VALUES ('speed', 300, %s, %s, %s, 36, 'test', 1)"
            " RETURNING run_id",
            (at(0), at(-28 * 24 * 60), at(0)),
        ).fetchone()
        assert row is not None
        for step in range(1, 37):
            conn.execute(
                "INSERT INTO forecasts (run_id, series_id, at, step, yhat, lo80, hi80, model)"
                " VALUES (%s, 'ring', %s, %s, 47, 40, 54, 'test')",
                (row[0], at(5 * (step - 1)), step),
            )


def store_both(
    db: psycopg.Connection, tsdb: psycopg.Connection, settings: Settings, url: str
) -> None:
    """Write the readings and the run to both backends and refresh their rollups."""
    readings = queue_on_the_ring()
    write(db, readings, at(45))
    db.commit()
    insert_readings(tsdb, readings, [at(45)] * len(readings))
    for conn, on in ((db, settings), (tsdb, timescale_settings(settings, url))):
        speed_run(conn)
        conn.commit()
        conn.autocommit = True
        rollups.refresh(conn, on, until=at(45), since=T0 - timedelta(weeks=4))


def rows(columns: alerts_inputs.Columns) -> list[tuple[object, ...]]:
    """Return the columns' rows, sorted (reads come in no particular order)."""
    names = sorted(columns)
    found = zip(*(columns[name].tolist() for name in names), strict=True)
    return sorted(found, key=repr)


def test_the_incident_reads_agree_with_plain_postgresql(
    db: psycopg.Connection, tsdb_city: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    load_city(db)
    store_both(db, tsdb_city, settings, timescale_url)
    plain, timescale = db, tsdb_city
    for read in (
        lambda c: alerts_inputs.segment_readings(c, at(20), at(45)),
        lambda c: alerts_inputs.segment_readings(c, at(20), at(45), ["ring"]),
        lambda c: alerts_inputs.recurrent_lows(c, at(30), 3, 3, 4, 10.0),
        lambda c: alerts_inputs.segment_latest(c, at(0)),
        lambda c: alerts_inputs.segment_intervals(c, at(0), at(45)),
    ):
        left, right = rows(read(plain)), rows(read(timescale))
        assert left, "the read found nothing: the scenario lost its data"
        assert_same(left, right)
    for bound, expected in ((25.0, ["ring"]), (10.0, [])):
        for conn in (plain, timescale):
            found = alerts_inputs.segments_reading_beyond(
                conn, at(20), at(45), {"ring": bound}, 50.0
            )
            assert found == expected, (bound, conn is timescale)


def test_the_incident_fires_on_timescale_as_on_plain_postgresql(
    db: psycopg.Connection, tsdb_city: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    load_city(db)
    store_both(db, tsdb_city, settings, timescale_url)
    fired = []
    for conn in (db, tsdb_city):
        run_once(conn, INCIDENT, at(45), "UTC")
        fired.append(
            conn.execute(
                "SELECT rule, subject_id, summary, details->>'since' FROM alerts"
                " WHERE state = 'firing'"
            ).fetchall()
        )
    assert fired[0] and fired[0][0][:2] == ("incident", "ring")
    assert fired[1] == fired[0]
