"""TimescaleDB: flow speeds weighted by each reading's own vehicles (migration 052).

The continuous aggregates give the weighted speed of tests/store/test_flow_weighted.py to
every reader, and a database migrated before keeps the history its raw readings no longer
have.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

import store.migrate
from store import dashboard_reads, feeds_reads
from store.registry import store_registry
from store.rollups import refresh
from store.rollups_writes import insert_readings
from store.series import read_series
from streetsense.config import DatabaseSettings, Settings
from tests.store.flow_queue import queue_forming, unweighted_speed, vehicles, weighted_speed
from tests.store.support import city
from tests.store.test_flow_weighted import recent_hour
from tests.timescale.conftest import connect
from tests.timescale.test_timescale import scalars, timescale_settings

pytestmark = pytest.mark.timescale


def test_aggregates_weigh_each_minute_speed_by_its_vehicles(
    tsdb: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    start = recent_hour()
    readings = queue_forming(start)
    insert_readings(tsdb, readings, [start + timedelta(minutes=5)] * len(readings))
    refresh(tsdb, timescale_settings(settings, timescale_url), until=start + timedelta(hours=1))
    expected = pytest.approx(weighted_speed(), rel=1e-12)
    for relation in ("flow_5m", "flow_1h", "flow_1d"):
        row = tsdb.execute(
            f"SELECT vehicle_count, mean_speed, speed_weight FROM {relation}"
            " WHERE segment_id = 'ring'"
        ).fetchone()
        assert row == (vehicles(), expected, vehicles()), relation
    end = start + timedelta(hours=1)
    for tier in ("5m", "1h"):
        series = dashboard_reads.flow_series(tsdb, ["ring"], start, end, tier)
        assert series.column("mean_speed") == [expected], tier
    assert dashboard_reads.segments_now(tsdb).column("mean_speed") == [expected]
    latest = feeds_reads.latest_flows(tsdb)
    assert latest is not None and latest["ring"].mean_speed == expected
    speeds = read_series(tsdb, "flow", "mean_speed", ["ring"], start, end, 300)
    assert math.isclose(speeds.values[speeds.mask][0], weighted_speed())


UPGRADE_SCHEMA = "upgrade_052"


@pytest.fixture
def before_052(timescale_url: str) -> Iterator[psycopg.Connection]:
    """Return a connection whose search path leads to a schema of its own, migrated up to
    (not including) migration 052; the schema is dropped afterwards."""
    with connect(timescale_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {UPGRADE_SCHEMA}")
        # PGlite's connections share one session: the path is put back however the test ends
        # (RESET would give PGlite's configured default, pg_catalog alone)
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        assert row is not None
        conn.execute(f"SET search_path TO {UPGRADE_SCHEMA}, public")
        try:
            earlier = [m for m in store.migrate.available_migrations() if m.version < 52]
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(store.migrate, "available_migrations", lambda: earlier)
                patch.setattr(store.migrate, "apply_grants", lambda conn: None)
                store.migrate.migrate(conn, DatabaseSettings(timescale="on", retention_days=400))
            yield conn
        finally:
            conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))
            conn.execute(f"DROP SCHEMA {UPGRADE_SCHEMA} CASCADE")


@pytest.mark.parametrize(
    ("days_back", "retention"),
    [(2, False), (30, False), (30, True)],
    ids=["history-in-the-late-window", "older-history", "older-history-dropped-by-retention"],
)
def test_the_upgrade_weighs_the_late_window_and_keeps_older_history(
    before_052: psycopg.Connection,
    settings: Settings,
    timescale_url: str,
    days_back: int,
    retention: bool,
) -> None:
    conn = before_052
    on_timescale = timescale_settings(settings, timescale_url)
    with conn.transaction():
        store_registry(conn, city(), "tests")
    recent = recent_hour()
    history = recent - timedelta(days=days_back)
    readings = queue_forming(history) + queue_forming(recent)
    insert_readings(conn, readings, [r.observed_at for r in readings])
    refresh(conn, on_timescale, until=recent + timedelta(hours=1), since=history)
    speeds = "SELECT mean_speed FROM flow_5m ORDER BY bucket"
    assert scalars(conn, speeds) == pytest.approx([unweighted_speed()] * 2, rel=1e-12)
    if retention:  # drops the old day's raw readings; the aggregates keep its buckets
        conn.execute(
            "SELECT drop_chunks('readings', older_than => %s)", (recent - timedelta(days=1),)
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store.migrate, "apply_grants", lambda conn: None)
        applied = store.migrate.migrate(conn, DatabaseSettings(timescale="on", retention_days=400))
    assert [m.version for m in applied][:1] == [52]
    # buckets beyond the late-data window (8 days and a day's margin) keep the speed they had
    older = days_back > 9
    before = unweighted_speed() if older else weighted_speed()
    for relation in ("flow_5m", "flow_1h", "flow_1d"):
        rows = conn.execute(f"SELECT bucket, mean_speed FROM {relation} ORDER BY bucket").fetchall()
        assert [r[1] for r in rows] == pytest.approx([before, weighted_speed()], rel=1e-12), (
            relation
        )
        assert rows[0][0] <= history < recent <= rows[1][0] + timedelta(days=1), relation
    # the new aggregates are refreshed as before; the old ones, kept for older history only,
    # are frozen
    policies = scalars(
        conn,
        "SELECT hypertable_name FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        f" AND hypertable_schema = '{UPGRADE_SCHEMA}'",
    )
    assert sorted(policies) == ["flow_lanes_1d", "flow_lanes_1h", "flow_lanes_5m"]
    aggregates = scalars(
        conn,
        "SELECT view_name FROM timescaledb_information.continuous_aggregates"
        f" WHERE view_schema = '{UPGRADE_SCHEMA}' ORDER BY 1",
    )
    kept = ("", "_unweighted") if older else ("",)
    assert aggregates == [f"flow_lanes_{tier}{k}" for tier in ("1d", "1h", "5m") for k in kept]
    later = queue_forming(recent + timedelta(minutes=30))
    insert_readings(conn, later, [r.observed_at for r in later])
    refresh(conn, on_timescale, until=recent + timedelta(hours=1))
    assert scalars(conn, speeds) == pytest.approx(
        [before, weighted_speed(), weighted_speed()], rel=1e-12
    )
