"""What the dashboard's live lot counts cost: the `lot_live` view against the `lot_now` rollup.

Usage: .venv/bin/python bench/lot_live.py [--lots 2000] [--readings 48] [--runs 7]

Builds a database with the simulator's city (2,000 lots: about 15,500 spot sensors and 1,200
gate counters), gives every parking source `--readings` readings over the last day, refreshes
the rollups, then times a full read of each relation (the median of `--runs`, after one
warm-up), with JIT off as the dashboard's connections have it. The rollup read is the
baseline of the same run. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simulators.city import CitySpec, generate_city  # noqa: E402
from simulators.registry_file import registry_tables  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.registry import store_registry  # noqa: E402
from store.rollups import refresh  # noqa: E402
from store.writes import write_readings  # noqa: E402
from streetsense.config import load_settings, with_overrides  # noqa: E402
from streetsense.readings import Reading  # noqa: E402
from streetsense.registry import parse_registry  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fill(url: str, lots: int, per_source: int) -> int:
    """Store the city and its parking readings; return how many readings."""
    settings = with_overrides(
        load_settings(None, environ={}), database={"url": url, "timescale": "off"}
    )
    city = generate_city(CitySpec(seed=11, lots=lots, segments=10, lamps_per_segment=0))
    end = datetime.now(UTC)
    step = timedelta(days=1) / per_source
    readings: list[Reading] = []
    for lot in city.lots:
        for n in range(per_source):
            at = end - step * (per_source - n)
            if lot.sensors:
                readings += [Reading(lot.device_id, "occupied", at, float((n + i) % 2), sensor)
                             for i, sensor in enumerate(lot.sensors)]  # fmt: skip
            else:
                readings.append(Reading(lot.device_id, "occupied_spaces", at, n % lot.capacity))
    with psycopg.connect(url) as conn:
        migrate(conn, settings.database)
        store_registry(conn, parse_registry(registry_tables(city)), "bench")
        with conn.transaction():
            for first in range(0, len(readings), 100_000):
                chunk = readings[first : first + 100_000]
                write_readings(conn, chunk, [r.observed_at for r in chunk])
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        refresh(conn, settings)
    return len(readings)


def timed(url: str, relation: str, runs: int) -> tuple[float, int]:
    """Return the median seconds of a full read of a relation, and its row count."""
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(relation))
    seconds = []
    with psycopg.connect(url) as conn:
        conn.execute("SET jit TO off")  # as the dashboard's connections (dashboard/data.py)
        rows = len(conn.execute(query).fetchall())  # warm-up
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(query).fetchall()
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), rows


def main() -> None:
    """Build, time, print, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=2000)
    parser.add_argument("--readings", type=int, default=48, help="per source, over a day")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    name = f"ss_bench_live_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN, dbname=name)
    try:
        stored = fill(url, args.lots, args.readings)
        rollup, lots = timed(url, "lot_now", args.runs)
        live, live_lots = timed(url, "lot_live", args.runs)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    print(f"{args.lots} lots, {stored:,} parking readings, median of {args.runs} full reads\n")
    print("| relation | lots | seconds | ratio |\n|---|---|---|---|")
    print(f"| lot_now (rollup, baseline) | {lots} | {rollup:.4f} | 1.0 |")
    print(f"| lot_live (newest readings) | {live_lots} | {live:.4f} | {live / rollup:.1f} |")


if __name__ == "__main__":
    main()
