"""Bad input on TimescaleDB: duplicates are still refused once their chunk is compressed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.rollups_writes import insert_readings
from streetsense.readings import Reading
from tests.timescale.conftest import (  # noqa: F401
    timescale_native,
    timescale_server,
    timescale_url,
    tsdb,
)

pytestmark = pytest.mark.timescale
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=20)


def _readings(first: int, count: int) -> list[Reading]:
    return [
        Reading("gw", "occupied", DAY + timedelta(seconds=seq), float(seq % 2), "s1", seq=seq)
        for seq in range(first, first + count)
    ]


def _write(conn: psycopg.Connection, readings: list[Reading]) -> int:
    return insert_readings(conn, readings, [datetime.now(UTC)] * len(readings))


def test_duplicates_are_refused_after_the_chunk_is_compressed(
    tsdb: psycopg.Connection,  # noqa: F811
    report: Callable[..., None],
) -> None:
    assert _write(tsdb, _readings(1, 300)) == 300
    compressed = tsdb.execute(
        "SELECT count(compress_chunk(c, if_not_compressed => true))"
        " FROM show_chunks('readings') AS c"
    ).fetchone()
    chunks = tsdb.execute(
        "SELECT count(*) FILTER (WHERE is_compressed), count(*)"
        " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
    ).fetchone()
    again = _write(tsdb, _readings(1, 300))  # every one a duplicate
    mixed = _write(tsdb, _readings(251, 100))  # 50 duplicates, 50 new
    rows = tsdb.execute("SELECT count(*), count(DISTINCT seq) FROM readings").fetchone()
    report("timescale_compressed_duplicates", sent=700, stored=rows, compressed_chunks=chunks,
           duplicates_written=again + mixed - 50)  # fmt: skip
    assert compressed is not None and compressed[0] >= 1
    assert chunks is not None and chunks[0] == chunks[1] >= 1
    assert (again, mixed) == (0, 50)
    assert rows == (350, 350)
