"""The database's share of a reading: binary COPY of ingest's own rows into the real schema.

One ingest process commits through one connection, so one PostgreSQL backend stores all its
readings. This measures that backend alone: rows already encoded as ingest encodes them
(store.reading_rows), COPYed in 30,000-row transactions into a database migrated by
`streetsense db migrate`, nothing else running. It reports rows/s from the one connection and
the backend's CPU per row, for the schema as it is and without some of its indexes, so that
the figures say what each index costs an insert.

    .venv/bin/python bench/readings_copy.py [--spots 1] [--rounds 2]
        [--server URL] [--timescale]

`--spots 1` is the ingest benchmark's shape (each device sends its own series); `--spots 20`
a gateway reporting 20 parking spots, 20 series per device. `--server` is the admin URL of the
server (default $STREETSENSE_TEST_DATABASE_URL); with `--timescale` it must preload
TimescaleDB, and the variants are plain tables on that same server (the baseline), the
hypertable as migrated, and the hypertable with the default time index TimescaleDB would add.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proc import cpu_seconds
from store.migrate import migrate
from store.reading_rows import COLUMNS, ReadingRows
from streetsense.config import DatabaseSettings

ADMIN = os.environ.get("STREETSENSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
DATABASE = "ss_bench_readings_copy"
BATCHES, ROWS_PER_BATCH, DEVICES, PACK = 50, 30_000, 10, 20
# TimescaleDB's create_hypertable adds this index unless told not to (migration 009 drops it).
DEFAULT_TIME_INDEX = "CREATE INDEX readings_observed_at_idx ON readings (observed_at DESC)"


@dataclass(frozen=True, slots=True)
class Variant:
    """A schema to COPY into: the backend, indexes dropped after migrating, statements run."""

    timescale: str = "off"
    dropped: tuple[str, ...] = ()
    added: tuple[str, ...] = ()


PLAIN: dict[str, Variant] = {
    "schema as migrated": Variant(),
    "without the unique key": Variant(dropped=("readings_identity",)),
    "without the two BRIN indexes": Variant(
        dropped=("readings_observed_brin", "readings_received_brin")
    ),
}
TIMESCALE: dict[str, Variant] = {
    "plain tables, same server (baseline)": Variant(),
    "hypertable as migrated": Variant("on"),
    "hypertable + TimescaleDB's default time index": Variant("on", added=(DEFAULT_TIME_INDEX,)),
}


def batches(spots: int) -> list[ReadingRows]:
    """Rows shaped like 20-reading packs from 10 devices, received as they are observed."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    out = []
    for number in range(BATCHES):
        rows = ReadingRows()
        for message in range(ROWS_PER_BATCH // PACK):
            device = f"dev{message % DEVICES}"
            at = t0 + timedelta(seconds=number * 2, microseconds=message * 1000)
            for j in range(PACK):
                sub_id = f"spot{j % spots}" if spots > 1 else ""
                seq = (number * ROWS_PER_BATCH) + message * PACK + j
                observed = at + timedelta(microseconds=10 * j)
                rows.add_row((device, "occupied", sub_id, observed, at, 1.0, seq, False))
        out.append(rows)
    return out


def measure(admin: str, data: list[ReadingRows], variant: Variant) -> tuple[float, float]:
    """Return (rows/s from one connection, backend CPU microseconds per row)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=DATABASE)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, DatabaseSettings(url=url, timescale=variant.timescale))
            if variant.timescale == "on":  # no policy runs beside the COPY
                conn.execute(
                    "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                )
            for index in variant.dropped:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
            for statement in variant.added:
                conn.execute(statement)
            conn.execute("CHECKPOINT")  # each variant starts without the last one's dirty pages
            pid = conn.info.backend_pid
            cpu_before, started = cpu_seconds(pid), time.perf_counter()
            copy_sql = f"COPY readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
            for rows in data:
                with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    copy.write(rows.copy_data())
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(DATABASE)))  # fmt: skip
    total = sum(len(rows) for rows in data)
    return total / elapsed, cpu / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spots", type=int, default=1, help="series per device (1: none)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant (median)")
    parser.add_argument("--server", default=ADMIN, help="admin URL of the server")
    parser.add_argument(
        "--timescale", action="store_true", help="compare hypertables with plain tables"
    )
    args = parser.parse_args()
    data = batches(args.spots)
    variants = TIMESCALE if args.timescale else PLAIN
    print(f"{BATCHES * ROWS_PER_BATCH:,} rows, {DEVICES} devices x {args.spots} series")
    print("| variant | rows/s, one connection | backend CPU us/row | CPU vs first |")
    print("|---|---|---|---|")
    baseline = 0.0
    for name, variant in variants.items():
        runs = [measure(args.server, data, variant) for _ in range(args.rounds)]
        rate = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        baseline = baseline or cpu
        print(f"| {name} | {rate:,.0f} | {cpu:.2f} | {cpu / baseline:.2f} |", flush=True)


if __name__ == "__main__":
    main()
