"""Write readings with one plain INSERT: for servers without COPY (PGlite in the TimescaleDB
tests, poolers that refuse COPY); store.writes.write_readings is the fast path."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from streetsense.readings import Reading

_INSERT = """
INSERT INTO readings (device_id, kind, sub_id, observed_at, received_at, value, seq,
                      clock_suspect)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[],
                     %s::float8[], %s::int8[], %s::bool[])
ON CONFLICT (device_id, kind, sub_id, observed_at) DO NOTHING
"""
# PGlite's socket server crashes on protocol messages larger than one TCP read (~64 KiB).
_CHUNK = 200


def insert_readings(
    conn: psycopg.Connection, readings: Sequence[Reading], received_at: Sequence[datetime]
) -> int:
    """Write readings in the caller's transaction; duplicates are skipped.

    Args:
        conn: a connection (inside a transaction the caller commits, or autocommit).
        readings: the readings.
        received_at: the receive time of each reading, same length.

    Returns:
        How many rows were new.
    """
    if len(readings) != len(received_at):
        raise ValueError("readings and received_at must have the same length")
    inserted = 0
    for start in range(0, len(readings), _CHUNK):
        end = start + _CHUNK
        inserted += _insert(conn, readings[start:end], received_at[start:end])
    return inserted


def _insert(
    conn: psycopg.Connection, readings: Sequence[Reading], received_at: Sequence[datetime]
) -> int:
    columns = (
        [r.device_id for r in readings],
        [r.kind for r in readings],
        [r.sub_id or "" for r in readings],
        [r.observed_at for r in readings],
        list(received_at),
        [float(r.value) for r in readings],
        [r.seq for r in readings],
        [r.clock_suspect for r in readings],
    )
    with conn.cursor() as cur:
        cur.execute(_INSERT, columns)
        return cur.rowcount
