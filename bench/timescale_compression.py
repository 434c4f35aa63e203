"""TimescaleDB compression of readings: ratio, and what a duplicate check on compressed data costs.

A city's day of readings (gateways reporting spot changes, lane counters every minute, street
lights every 15 min) is COPYed into a native TimescaleDB migrated by `streetsense db migrate`,
under each candidate `segmentby`/`orderby`, then compressed. Reported per candidate: bytes
before and after (table, indexes and TOAST, from chunk_compression_stats), and a re-send: a
sample of stored readings sent again through ingest's writer (store.writes.ReadingWriter: the
direct COPY meets the unique key, the staged merge skips them all), its time, and the work
TimescaleDB reports for the merge (EXPLAIN ANALYZE: compressed batches scanned, rows
decompressed), which does not depend on what else runs on the machine. Background jobs are
paused so that nothing else runs in the database.

    .venv/bin/python bench/timescale_compression.py --server postgresql://postgres@HOST:PORT/postgres
        [--gateways 200] [--counters 40] [--lights 300] [--spot-change-min 20]
        [--resend 5000] [--rounds 3]

The server must preload TimescaleDB (see docs/deploy.md); the benchmark creates and drops a
database of its own per candidate.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.scratch import empty_database
from store.migrate import migrate
from store.reading_rows import COLUMNS, ReadingRow, ReadingRows
from store.writes import ReadingWriter
from streetsense.config import DatabaseSettings

# name -> (segmentby, orderby): what migration 001 set, and the candidates for migration 009.
CANDIDATES: dict[str, tuple[str, str]] = {
    "device_id / observed_at (migration 001)": ("device_id", "observed_at"),
    "device_id / kind, sub_id, observed_at": ("device_id", "kind, sub_id, observed_at"),
    "device_id, kind / sub_id, observed_at (migration 009)": (
        "device_id, kind",
        "sub_id, observed_at",
    ),
    "device_id, kind, sub_id / observed_at": ("device_id, kind, sub_id", "observed_at"),
}
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
SPOTS = 20


@dataclass(frozen=True, slots=True)
class Result:
    """One candidate's figures."""

    before: int
    after: int
    compress_s: float
    resend_ms: tuple[float, ...]  # per re-send shape
    batches: tuple[int, ...]  # compressed batches TimescaleDB looked at to check the key
    decompressed: tuple[int, ...]  # rows it decompressed to do so


def check_work(conn: psycopg.Connection, rows: list[ReadingRow]) -> tuple[int, int]:
    """Return (batches scanned, rows decompressed) of the staged merge, from EXPLAIN ANALYZE.

    The statement is the one ingest's writer runs for a batch with duplicates; it is rolled
    back, and counts the same work whenever it runs.
    """
    with conn.transaction(force_rollback=True):
        conn.execute("CREATE TEMP TABLE bench_stage (LIKE readings INCLUDING DEFAULTS)")
        copy_sql = f"COPY bench_stage ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.write(ReadingRows(rows).copy_data())
        row = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) INSERT INTO readings SELECT * FROM bench_stage"
            " ON CONFLICT (device_id, kind, sub_id, observed_at) DO NOTHING"
        ).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return int(plan.get("Batches scanned", 0)), int(plan.get("Tuples decompressed", 0))


def city_day(
    gateways: int, counters: int, lights: int, change_s: float, rng: random.Random
) -> list[ReadingRow]:
    """Return one day of readings, in time order as ingest receives them."""
    rows: list[ReadingRow] = []
    received = datetime.now(UTC)
    for gateway in range(gateways):
        for spot in range(SPOTS):  # on/off, a change every change_s on average
            moment = DAY + timedelta(seconds=rng.uniform(0, change_s))
            state = 0.0
            while moment < DAY + timedelta(days=1):
                state = 1.0 - state
                rows.append((f"gw{gateway}", "occupied", f"s{spot}", moment, received, state,
                             None, False))  # fmt: skip
                moment += timedelta(seconds=rng.expovariate(1 / change_s))
    for counter in range(counters):
        for minute in range(1440):
            moment = DAY + timedelta(minutes=minute)
            for lane in ("1", "2"):
                rows += [
                    (f"tc{counter}", "vehicle_count", lane, moment, received,
                     float(rng.randint(0, 30)), minute, False),
                    (f"tc{counter}", "mean_speed", lane, moment, received,
                     round(rng.uniform(20, 60), 1), minute, False),
                    (f"tc{counter}", "detector_occupancy", lane, moment, received,
                     round(rng.uniform(0, 40), 1), minute, False),
                ]  # fmt: skip
    for light in range(lights):
        for quarter in range(96):
            moment = DAY + timedelta(minutes=15 * quarter, seconds=light % 60)
            for kind, value in (("power_w", 70.0 + light % 7), ("dim_level", 80.0),
                                ("lamp_ok", 1.0), ("hours_on", 1000.0 + quarter)):  # fmt: skip
                rows.append((f"sl{light}", kind, "", moment, received, value, quarter, False))
    rows.sort(key=lambda row: row[3])
    return rows


def measure(
    url: str, candidate: tuple[str, str], day: list[ReadingRow], resends: list[list[ReadingRow]]
) -> Result:
    """Load the day under one candidate, compress it, re-send each sample; return the figures."""
    segmentby, orderby = candidate
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, DatabaseSettings(url=url, timescale="on", compress_after_days=7))
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE readings SET (timescaledb.compress_segmentby = {},"
                " timescaledb.compress_orderby = {})"
            ).format(sql.Literal(segmentby), sql.Literal(orderby))
        )
        for start in range(0, len(day), 30_000):
            with conn.transaction():
                ReadingWriter().write(conn, ReadingRows(day[start : start + 30_000]))
        conn.execute("VACUUM ANALYZE readings")
        began = time.perf_counter()
        conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('readings') c")
        compress_s = time.perf_counter() - began
        sizes = conn.execute(
            "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
            " FROM chunk_compression_stats('readings')"
        ).fetchone()
        assert sizes is not None
        times, work = [], []
        for rows in resends:
            began = time.perf_counter()
            with conn.transaction():
                new = ReadingWriter().write(conn, ReadingRows(rows))
            times.append((time.perf_counter() - began) * 1000)
            assert not new, f"re-sent readings were stored again: {new}"
            work.append(check_work(conn, rows))
    return Result(
        int(sizes[0]),
        int(sizes[1]),
        compress_s,
        tuple(times),
        tuple(w[0] for w in work),
        tuple(w[1] for w in work),
    )


def main() -> None:
    """Measure every candidate and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("STREETSENSE_TEST_TIMESCALE_URL", ""),
        help="admin URL of a native TimescaleDB (default: $STREETSENSE_TEST_TIMESCALE_URL)",
    )
    parser.add_argument("--gateways", type=int, default=200)
    parser.add_argument("--counters", type=int, default=40)
    parser.add_argument("--lights", type=int, default=300)
    parser.add_argument(
        "--spot-change-min", type=float, default=20, help="mean minutes between a spot's changes"
    )
    parser.add_argument("--resend", type=int, default=5000, help="readings of B sent again")
    parser.add_argument("--rounds", type=int, default=3, help="runs per candidate (median)")
    args = parser.parse_args()
    if not args.server:
        parser.error("--server (or STREETSENSE_TEST_TIMESCALE_URL) must name a TimescaleDB")
    rng = random.Random(20)
    day = city_day(args.gateways, args.counters, args.lights, args.spot_change_min * 60, rng)
    # A gateway re-sending six hours it buffered, and readings of every kind from all over the
    # city (what replaying a broker's queue after a crash of ingest looks like).
    noon, evening = DAY + timedelta(hours=12), DAY + timedelta(hours=18)
    gateway = [row for row in day if row[0] == "gw0" and noon <= row[3] < evening]
    resends = [gateway, rng.sample(day, args.resend)]
    print(f"{len(day):,} readings in one day (a spot changes every {args.spot_change_min:g}"
          f" min); re-sent after compression: A = one gateway's"
          f" 6 h ({len(resends[0]):,} readings), B = {args.resend:,} from all over the day;"
          f" median of {args.rounds} runs")  # fmt: skip
    print("| segmentby / orderby | MB before | MB after | ratio | compress s | A ms | A batches"
          " | A rows decompressed | B ms | B batches | B rows decompressed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, candidate in CANDIDATES.items():
        runs = []
        for _ in range(args.rounds):
            with empty_database(args.server, "ss_bench_compress") as url:
                runs.append(measure(url, candidate, day, resends))
        before = statistics.median(r.before for r in runs) / 1e6
        after = statistics.median(r.after for r in runs) / 1e6
        cells = [f"{name}", f"{before:.1f}", f"{after:.2f}", f"{before / after:.1f}x",
                 f"{statistics.median(r.compress_s for r in runs):.2f}"]  # fmt: skip
        for shape in range(len(resends)):
            cells.append(f"{statistics.median(r.resend_ms[shape] for r in runs):.0f}")
            cells.append(f"{statistics.median(r.batches[shape] for r in runs):,.0f}")
            cells.append(f"{statistics.median(r.decompressed[shape] for r in runs):,.0f}")
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
