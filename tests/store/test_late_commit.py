"""Batches committed long after receipt: below the receive-time scan, reached by invalidations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors

from store.rollup_invalidations import LATE_COMMIT_AFTER, is_late, note_late_commit
from store.rollups import COMMIT_MARGIN, refresh
from store.writes import write_readings
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.store.support import at, load_city, spot, write
from tests.store.test_late_data import first_batch, rebuilt, snapshot

# Received 10 minutes before the watermark of a refresh that ran while they waited to commit.
LATE_RECEIVED = at(10)
WATERMARK = at(20)


def stalled_batch() -> list[Reading]:
    """Return readings received at LATE_RECEIVED whose commit stalled past a refresh."""
    return [
        spot("s2", 5, True),
        spot("s2", 12.5, False),
        Reading("loop", "vehicle_count", at(2), 30.0, "l2"),
    ]


def commit_stalled(conn: psycopg.Connection, *, noted: bool) -> None:
    """Commit the stalled batch now, noting it as ingest does when `noted`."""
    readings = stalled_batch()
    with conn.transaction():
        write_readings(conn, readings, [LATE_RECEIVED] * len(readings))
        if noted:
            devices = {reading.device_id for reading in readings}
            note_late_commit(conn, devices, min(reading.observed_at for reading in readings))


def refreshed_before_the_commit(conn: psycopg.Connection, settings: Settings) -> None:
    """Fold in on-time readings; other devices' move the watermark past the stalled receipt."""
    load_city(conn)
    write(conn, first_batch(), received_at=at(1))
    refresh(conn, settings, until=at(30))
    write(conn, [Reading("counter", "occupied_spaces", at(15), 50.0)], received_at=WATERMARK)
    assert refresh(conn, settings, until=at(30)).watermark == WATERMARK


def market(rollups: dict[str, list[tuple[object, ...]]]) -> list[object]:
    """Return the market lot's 5 min occupancy, bucket by bucket."""
    return [row[2] for row in rollups["occupancy_5m"] if row[0] == "market"]


def invalidations(conn: psycopg.Connection) -> int:
    """Return how many invalidations wait for a refresh."""
    row = conn.execute("SELECT count(*) FROM rollup_invalidations").fetchone()
    conn.commit()
    return int(row[0]) if row else -1


def test_late_commit_threshold_leaves_half_the_margin_to_clocks() -> None:
    assert LATE_COMMIT_AFTER * 2 == COMMIT_MARGIN
    limit = LATE_COMMIT_AFTER.total_seconds()
    assert not is_late(1_000.0, 1_000.0 + limit)
    assert is_late(1_000.0, 1_000.0 + limit + 0.5)


def test_unnoted_late_commit_is_missed(db: psycopg.Connection, settings: Settings) -> None:
    """The documented limit of the receive-time scan, which invalidations exist to close."""
    refreshed_before_the_commit(db, settings)
    before = snapshot(db)
    commit_stalled(db, noted=False)
    refresh(db, settings, until=at(30))
    assert snapshot(db) == before


def test_noted_late_commit_is_folded_in(db: psycopg.Connection, settings: Settings) -> None:
    refreshed_before_the_commit(db, settings)
    before = snapshot(db)
    commit_stalled(db, noted=True)
    assert invalidations(db) == 1
    result = refresh(db, settings, until=at(30))
    assert (result.lots, result.segments) == (2, 1)  # the garage's counter is rescanned
    assert result.watermark == WATERMARK
    assert invalidations(db) == 0
    after = snapshot(db)
    assert market(before) == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert market(after) == [1.0, 2.0, 1.5, 1.0, 0.0, 0.0]
    assert after["flow_5m"][0][2] == 40.0
    refresh(db, settings, until=at(30))
    assert snapshot(db) == after
    assert rebuilt(db, settings, until=at(30)) == after  # as if built in one go


def test_rolled_back_batch_notes_nothing(db: psycopg.Connection, settings: Settings) -> None:
    refreshed_before_the_commit(db, settings)
    with pytest.raises(errors.UniqueViolation), db.transaction():
        note_late_commit(db, ["gw"], at(0))
        db.execute("INSERT INTO devices SELECT * FROM devices LIMIT 1")  # the batch fails
    assert invalidations(db) == 0


@contextmanager
def table_locked(database_url: str, table: str) -> Iterator[None]:
    """Hold an exclusive lock on a table from another session, as a stuck migration would."""
    with psycopg.connect(database_url) as other, other.transaction():
        other.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield


def test_failed_refresh_keeps_invalidations(
    db: psycopg.Connection, database_url: str, settings: Settings
) -> None:
    refreshed_before_the_commit(db, settings)
    commit_stalled(db, noted=True)
    db.execute("SET lock_timeout = '200ms'")
    db.commit()
    with table_locked(database_url, "occupancy_5m"), pytest.raises(errors.LockNotAvailable):
        refresh(db, settings, until=at(30))
    assert invalidations(db) == 1
    refresh(db, settings, until=at(30))
    assert invalidations(db) == 0
    assert market(snapshot(db)) == [1.0, 2.0, 1.5, 1.0, 0.0, 0.0]
