"""Readings' observed-time BRIN index summarizes filled ranges without waiting for a vacuum.

The machine's PostgreSQL runs without autovacuum (CI), so the test runs a private cluster with
autovacuum on, as a city's server runs: there autovacuum serves the index's summarization
requests. Judged through what a reader of the newest minutes pays: the heap blocks its bitmap
scan visits. An unsummarized range matches every query, so before migration 051 such a read
visited the whole table until a VACUUM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from harness.ingest import wait_until
from harness.postgres import PrivateCluster, server_bindir
from harness.scratch import empty_database
from store.migrate import migrate
from store.writes import write_readings
from streetsense.config import DatabaseSettings
from streetsense.readings import Reading

PAGES_PER_RANGE = 128  # PostgreSQL's default, which migration 001 keeps
SUMMARIZE_DEADLINE_S = 90.0
START = datetime(2026, 12, 7, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def autovacuum_server(admin_url: str) -> Iterator[str]:
    """Return the URL of a private cluster whose autovacuum wakes every second."""
    settings = {"autovacuum": "on", "autovacuum_naptime": "1"}
    with PrivateCluster(server_bindir(admin_url), settings=settings) as cluster:
        yield cluster.url


def _newest_minute_plan(conn: psycopg.Connection, since: datetime) -> dict[str, object]:
    """Return the bitmap heap scan node of a read of readings observed since `since`."""
    conn.execute("SET enable_seqscan = off")  # a small table; the index is what is judged
    row = conn.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM readings WHERE observed_at >= %s",
        (since,),
    ).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    node = plan[0]["Plan"]
    while node["Node Type"] != "Bitmap Heap Scan":
        node = node["Plans"][0]
    return dict(node)


def test_a_read_of_the_newest_minutes_skips_filled_ranges_without_a_vacuum(
    autovacuum_server: str,
) -> None:
    with empty_database(autovacuum_server, "ss_brin") as url, psycopg.connect(url) as conn:
        migrate(conn, DatabaseSettings(timescale="off"))
        # Left to autovacuum, the table's own vacuum would summarize the ranges too; only the
        # index's requests are to be served here.
        conn.execute("ALTER TABLE readings SET (autovacuum_enabled = false)")
        conn.commit()
        # two lanes of a counter every second for nine hours: about five ranges of 128 pages
        readings = [
            Reading("t1", "vehicle_count", START + timedelta(seconds=s), 1.0, lane)
            for s in range(9 * 3600)
            for lane in ("l1", "l2")
        ]
        with conn.transaction():
            write_readings(conn, readings, [r.observed_at for r in readings])
        conn.autocommit = True
        pages = conn.execute("SELECT pg_relation_size('readings') / 8192").fetchone()
        assert pages is not None and pages[0] >= 4 * PAGES_PER_RANGE, pages
        newest = readings[-1].observed_at - timedelta(minutes=1)

        def blocks_read() -> int:
            node = _newest_minute_plan(conn, newest)
            return int(str(node.get("Lossy Heap Blocks", 0))) + int(
                str(node.get("Exact Heap Blocks", 0))
            )

        # Autovacuum summarizes the filled ranges in its next round: wait for that, not a time.
        summarized = wait_until(
            lambda: blocks_read() <= 2 * PAGES_PER_RANGE, SUMMARIZE_DEADLINE_S, step=0.5
        )
        assert summarized, (
            f"the read still visited {blocks_read()} of {pages[0]} heap pages "
            f"{SUMMARIZE_DEADLINE_S:.0f} s after the write: the filled ranges were never "
            "summarized (is autosummarize on for readings_observed_brin?)"
        )
        vacuumed = conn.execute(
            "SELECT vacuum_count + autovacuum_count FROM pg_stat_user_tables"
            " WHERE relname = 'readings'"
        ).fetchone()
        assert vacuumed == (0,), "a vacuum, not autosummarize, summarized the ranges"
