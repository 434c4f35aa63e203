"""Revised readings: a higher revision replaces the stored reading, and the rollups follow."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.revisions import Revisions, write_revisions
from store.rollups import refresh
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading
from tests.store.support import T0, at, load_city, write


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test settings, with a late window that reaches back to the test city's day (T0)."""
    days = (datetime.now(UTC) - T0).days + 2
    return with_overrides(settings, ingest={"late_window_s": days * 86_400})


def revise(conn: psycopg.Connection, *readings: Reading) -> tuple[dict[str, int], int]:
    """Write revised readings in one transaction, received now; return (new, replaced)."""
    revisions = Revisions()
    for reading in readings:
        revisions.add(reading, datetime.now(UTC))
    with conn.transaction():
        result = write_revisions(conn, revisions)
    return result.new, result.replaced


def five_minutes(conn: psycopg.Connection) -> list[tuple[datetime, float, float | None]]:
    """Return the ring's 5-minute buckets: (bucket, vehicles, mean speed)."""
    rows = conn.execute(
        "SELECT bucket, vehicle_count, mean_speed FROM flow_5m WHERE segment_id = 'ring' "
        "ORDER BY bucket"
    ).fetchall()
    conn.commit()  # the next refresh needs the connection outside a transaction
    return rows


def test_a_higher_revision_replaces_the_count_and_the_rollups_follow(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    sent = Reading("loop", "vehicle_count", at(1), 0.0, "l1", seq=10)  # the agent missed 12
    # Received an hour ago, long below the refresh's rescan margin: only the revision's own
    # receive time can bring the reading back into the refresh's scan.
    write(db, [sent], datetime.now(UTC) - timedelta(hours=1))
    write(db, [Reading("loop", "vehicle_count", at(30), 7.0, "l1", seq=11)])
    refresh(db, settings, until=at(40))
    assert five_minutes(db) == [(T0, 0.0, None), (at(30), 7.0, None)]

    assert revise(db, replace(sent, value=12.0, seq=14, revision=1)) == ({}, 1)
    refresh(db, settings, until=at(40))
    assert five_minutes(db) == [(T0, 12.0, None), (at(30), 7.0, None)]
    hourly = db.execute("SELECT vehicle_count FROM flow_1h WHERE segment_id = 'ring'").fetchall()
    assert hourly == [(19.0,)]
    stored = db.execute(
        "SELECT value, revision, seq FROM readings WHERE kind = 'vehicle_count' AND "
        "observed_at = %s",
        (at(1),),
    ).fetchone()
    assert stored == (12.0, 1, 14)


def test_a_resent_or_older_revision_changes_nothing(
    db: psycopg.Connection, settings: Settings
) -> None:
    load_city(db)
    first = Reading("loop", "vehicle_count", at(1), 3.0, "l1", seq=1)
    write(db, [first])
    assert revise(db, replace(first, value=5.0, seq=2, revision=2)) == ({}, 1)
    assert revise(db, replace(first, value=5.0, seq=2, revision=2)) == ({}, 0)  # sent twice
    assert revise(db, replace(first, value=4.0, seq=3, revision=1)) == ({}, 0)  # overtaken
    assert write(db, [first]) == 0  # the first report, re-sent after the revision
    refresh(db, settings, until=at(10))
    assert five_minutes(db) == [(T0, 5.0, None)]


def test_a_batch_keeps_the_highest_revision_of_each_reading(db: psycopg.Connection) -> None:
    load_city(db)
    first = Reading("loop", "vehicle_count", at(1), 3.0, "l1", seq=1)
    later = [replace(first, value=float(n), seq=n, revision=n) for n in (3, 2, 4, 1)]
    assert revise(db, *later) == ({"loop": 1}, 0)  # no first report stored: a new row
    row = db.execute("SELECT value, revision FROM readings").fetchone()
    assert row == (4.0, 4)
