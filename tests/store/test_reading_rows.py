"""Rows encoded by store.reading_rows land in readings exactly as given, once each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from store.reading_rows import ReadingRow, ReadingRows
from store.writes import ReadingWriter, write_reading_rows

T0 = datetime(2026, 11, 20, 8, 0, 0, 123_457, tzinfo=UTC)
ROWS: list[ReadingRow] = [
    ("gw", "occupied", "s1", T0, T0 + timedelta(seconds=2), 1.0, 7, False),
    ("gw", "occupied", "s2", T0 - timedelta(microseconds=1), T0, 0.0, None, True),
    ("loop", "mean_speed", "", T0 + timedelta(days=400), T0, 47.25, 2**62, False),
    ("loop", "vehicle_count", "L1", datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
     T0, 12.0, 0, False),
]  # fmt: skip


def stored(db: psycopg.Connection) -> list[tuple[object, ...]]:
    return db.execute(
        "SELECT device_id, kind, sub_id, observed_at, received_at, value, seq, clock_suspect"
        " FROM readings ORDER BY device_id, kind, sub_id, observed_at"
    ).fetchall()


def test_rows_round_trip_through_copy(db: psycopg.Connection) -> None:
    rows = ReadingRows(ROWS)
    assert len(rows) == 4
    assert rows.per_device == {"gw": 2, "loop": 2}
    assert rows.earliest() == ROWS[3][3]
    with db.transaction():
        assert ReadingWriter().write(db, rows) == {"gw": 2, "loop": 2}
    assert stored(db) == sorted(ROWS)


def test_a_second_delivery_is_written_once_and_counted_as_nothing_new(
    db: psycopg.Connection,
) -> None:
    writer = ReadingWriter()
    with db.transaction():
        writer.write(db, ReadingRows(ROWS[:2]))
    # The direct COPY meets the unique key, falls back to staging, and says what was new.
    with db.transaction():
        assert writer.write(db, ReadingRows(ROWS)) == {"loop": 2}
    with db.transaction():
        assert write_reading_rows(db, ReadingRows(ROWS)) == {}
    assert stored(db) == sorted(ROWS)
