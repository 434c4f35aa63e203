"""The flow rollups weigh each minute's speed by its own vehicles, as the incident rule does.

Before, a lane's minute speeds were averaged alike and only lanes weighed by vehicles: when a
queue forms within five minutes the few slow vehicles counted as much as the many fast ones.
Every reader of the rollups (dashboard, open feeds, analytics) gets the weighted speed.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store import dashboard_reads, feeds_reads
from store.migrate import migrate
from store.rollups import refresh
from store.series import read_series
from streetsense.config import DatabaseSettings, Settings
from tests.store.flow_queue import queue_forming, unweighted_speed, vehicles, weighted_speed
from tests.store.support import load_city, write


def recent_hour() -> datetime:
    """Return the start of the hour two hours ago: within segment_now's day, complete."""
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def test_the_crafted_minutes_tell_the_two_averages_apart() -> None:
    assert abs(weighted_speed() - unweighted_speed()) > 5.0


def test_flow_weighs_each_minute_speed_by_its_vehicles(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    start = recent_hour()
    write(db, queue_forming(start), received_at=start + timedelta(minutes=5))
    refresh(db, settings, until=start + timedelta(hours=1))
    for table in ("flow_5m", "flow_1h"):
        row = db.execute(
            f"SELECT vehicle_count, mean_speed, speed_weight FROM {table} WHERE segment_id = 'ring'"
        ).fetchone()
        assert row is not None
        assert row[0] == vehicles() and row[2] == vehicles(), table
        assert row[1] == pytest.approx(weighted_speed(), rel=1e-12), table


def test_readers_get_the_weighted_speed(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    start = recent_hour()
    write(db, queue_forming(start), received_at=start + timedelta(minutes=5))
    refresh(db, settings, until=start + timedelta(hours=1))
    expected = pytest.approx(weighted_speed(), rel=1e-12)
    end = start + timedelta(hours=1)
    for tier in ("5m", "1h"):  # the dashboard's segment charts
        series = dashboard_reads.flow_series(db, ["ring"], start, end, tier)
        assert series.column("mean_speed") == [expected], tier
    city_now = dashboard_reads.segments_now(db)  # the dashboard's map
    assert city_now.column("mean_speed") == [expected]
    latest = feeds_reads.latest_flows(db)  # the open feeds
    assert latest is not None and latest["ring"].mean_speed == expected
    for step in (300, 900, 3600):  # what analytics forecasts from
        speeds = read_series(db, "flow", "mean_speed", ["ring"], start, end, step)
        observed = speeds.values[speeds.mask]
        assert len(observed) == 1 and math.isclose(observed[0], weighted_speed()), step


def test_the_upgrade_recomputes_the_late_window(db: psycopg.Connection, settings: Settings) -> None:
    load_city(db)
    start = recent_hour()
    older = start - timedelta(days=30)  # beyond the late-data window: left as it was
    write(db, queue_forming(older) + queue_forming(start), received_at=start)
    refresh(db, settings, until=start + timedelta(hours=1), since=older)
    with db.transaction():  # the rows as the refresh before migration 052 wrote them
        for table in ("flow_5m", "flow_1h", "flow_1d"):
            db.execute(f"UPDATE {table} SET mean_speed = %s", (unweighted_speed(),))
        db.execute("DELETE FROM schema_migrations WHERE version = 52")
    applied = migrate(db, DatabaseSettings(timescale="off"))
    assert [m.version for m in applied] == [52]
    for table in ("flow_5m", "flow_1h", "flow_1d"):
        speeds = db.execute(f"SELECT mean_speed FROM {table} ORDER BY bucket").fetchall()
        assert speeds == [
            (pytest.approx(unweighted_speed(), rel=1e-12),),
            (pytest.approx(weighted_speed(), rel=1e-12),),
        ], table
