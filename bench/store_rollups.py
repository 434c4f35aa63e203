"""Rollup refresh cost for a city slice: cold build, steady 5 min refreshes, late data.

The baseline is a full recompute (`refresh(since=start)`) of the same history in the same run;
incremental refreshes are reported as a fraction of it.

    .venv/bin/python bench/store_rollups.py [--lots 50] [--spots 40] [--segments 100] [--hours 6]
        [--server URL] [--timescale [--default-time-index]]

Needs PostgreSQL (`--server`, default $STREETSENSE_TEST_DATABASE_URL, else
postgres@127.0.0.1:5432); creates and drops a database of its own. With `--timescale` the
server must preload TimescaleDB and the schema uses it (hypertables, continuous aggregates);
its background jobs are paused, so refresh does all the work it would do.
`--default-time-index` adds back the B-tree on readings.observed_at that TimescaleDB creates
with a hypertable (migration 009 drops it), to compare the refresh with and without it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.scratch import scratch_database
from store.registry import store_registry
from store.rollups import refresh
from store.writes import write_readings
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.readings import Reading
from streetsense.registry import Registry, parse_registry

STEP = timedelta(minutes=5)


def city(lots: int, spots: int, segments: int) -> Registry:
    """Return a registry: lots with one gateway each, segments with two 2-lane counters."""
    site = "bench"
    entries: dict[str, list[dict[str, object]]] = {
        "site": [{"id": site, "name": "Bench"}],
        "lot": [],
        "device": [],
        "spot": [],
        "segment": [],
    }
    for i in range(lots):
        entries["lot"].append(
            {
                "id": f"lot{i}",
                "site": site,
                "name": f"Lot {i}",
                "kind": "on_street",
                "capacity": spots,
                "lat": 56.0,
                "lon": 10.0,
            }
        )
        entries["device"].append(
            {"id": f"gw{i}", "site": site, "kind": "parking", "lot": f"lot{i}"}
        )
        entries["spot"] += [
            {"id": f"l{i}s{j}", "lot": f"lot{i}", "device": f"gw{i}", "sensor": f"s{j}"}
            for j in range(spots)
        ]
    for i in range(segments):
        entries["segment"].append(
            {
                "id": f"seg{i}",
                "site": site,
                "name": f"Segment {i}",
                "direction": "n",
                "coordinates": [[10.0, 56.0], [10.1, 56.0]],
                "speed_limit_kmh": 50,
            }
        )
        entries["device"] += [{"id": f"tc{i}x{k}", "site": site, "kind": "traffic",
                               "segment": f"seg{i}"} for k in range(2)]  # fmt: skip
    return parse_registry(entries)


def readings(
    registry: Registry, start: datetime, end: datetime, rng: random.Random
) -> list[Reading]:
    """Return spot events (~one change per 30 min per spot) and 1 min lane counts."""
    out: list[Reading] = []
    minutes = int((end - start) / timedelta(minutes=1))
    changes = max(1, minutes // 30)
    for spot in registry.spots:
        for _ in range(rng.randint(0, changes)):
            moment = start + timedelta(seconds=rng.uniform(0, minutes * 60))
            out.append(Reading(spot.device, "occupied", moment, float(rng.random() < 0.6),
                               spot.sensor))  # fmt: skip
    for device in registry.devices:
        if device.kind.value != "traffic":
            continue
        for minute in range(minutes):
            moment = start + timedelta(minutes=minute)
            for lane in ("1", "2"):
                count = float(rng.randint(0, 30))
                out += [
                    Reading(device.id, "vehicle_count", moment, count, lane),
                    Reading(device.id, "mean_speed", moment, rng.uniform(20, 60), lane),
                    Reading(device.id, "detector_occupancy", moment, rng.uniform(0, 40), lane),
                ]
    return out


def store(conn: psycopg.Connection, batch: list[Reading], received: datetime) -> None:
    """Write readings as ingest would, in one transaction."""
    with conn.transaction():
        write_readings(conn, batch, [received] * len(batch))


def by_step(batch: list[Reading], start: datetime) -> list[tuple[datetime, list[Reading]]]:
    """Group readings by the 5 min step they were observed in; key: the step's end."""
    steps: dict[int, list[Reading]] = {}
    for reading in batch:
        steps.setdefault(int((reading.observed_at - start) / STEP), []).append(reading)
    return [(start + STEP * (k + 1), steps[k]) for k in sorted(steps)]


def timed(conn: psycopg.Connection, settings: Settings, **kwargs: object) -> float:
    """Run one refresh; return its wall time in seconds."""
    began = time.perf_counter()
    refresh(conn, settings, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - began


def arguments() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=50)
    parser.add_argument("--spots", type=int, default=40)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", default=None, help="admin URL of the server")
    parser.add_argument("--timescale", action="store_true", help="use TimescaleDB")
    parser.add_argument(
        "--default-time-index", action="store_true", help="keep TimescaleDB's observed_at index"
    )
    return parser.parse_args()


def prepare(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    """Pause TimescaleDB's jobs (refresh does their work) and add the index asked for."""
    if args.timescale:
        conn.execute(
            "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
        )
    if args.default_time_index:
        conn.execute("CREATE INDEX readings_observed_at_idx ON readings (observed_at DESC)")


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    args = arguments()
    backend = "on" if args.timescale else "off"
    rng = random.Random(7)
    registry = city(args.lots, args.spots, args.segments)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    start = end - timedelta(hours=args.hours)
    with (
        scratch_database("ss_bench_store", admin_url=args.server, timescale=backend) as url,
        psycopg.connect(url) as conn,
    ):
        settings = with_overrides(
            load_settings(None, environ={}), database={"url": url, "timescale": backend}
        )
        prepare(conn, args)
        store_registry(conn, registry, "bench")
        history = readings(registry, start, end, rng)
        # as ingest would have: each 5 min of history received just after it was observed
        for received, batch in by_step(history, start):
            store(conn, batch, received)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE readings")  # what autovacuum does after a bulk load
        conn.autocommit = False
        cold = timed(conn, settings, until=end)
        full = statistics.median(timed(conn, settings, until=end, since=start) for _ in range(2))
        steady, late = [], []
        now = end
        for _ in range(args.rounds):
            fresh = readings(registry, now, now + STEP, rng)
            now += STEP
            store(conn, fresh, now + timedelta(seconds=1))
            steady.append(timed(conn, settings, until=now))
        for _ in range(args.rounds):
            fresh = readings(registry, now, now + STEP, rng)
            hour_ago = now - timedelta(hours=1)
            # a tenth of the devices deliver 5 min of buffered history an hour late
            delayed = [r for r in readings(registry, hour_ago, hour_ago + STEP, rng)
                       if zlib.crc32(r.device_id.encode()) % 10 == 0]  # fmt: skip
            now += STEP
            store(conn, fresh + delayed, now + timedelta(seconds=1))
            late.append(timed(conn, settings, until=now))
        per_step = len(readings(registry, now, now + STEP, rng))
    spots = args.lots * args.spots
    lanes = args.segments * 4
    index = " with its default time index" if args.default_time_index else ""
    print(f"{'TimescaleDB' if args.timescale else 'PostgreSQL'}{index};"
          f" city slice: {args.lots} lots, {spots} spot sensors, {args.segments} segments,"
          f" {lanes} lanes; {len(history):,} readings over {args.hours} h;"
          f" ~{per_step:,} new readings per 5 min")  # fmt: skip
    print("| refresh | seconds | vs full recompute |")
    print("|---|---|---|")
    for label, value in (
        (f"cold build of {args.hours} h", cold),
        (f"full recompute of {args.hours} h (baseline)", full),
        ("steady: 5 min of new readings (median)", statistics.median(steady)),
        ("5 min new + 1 h late from 10% devices (median)", statistics.median(late)),
    ):
        print(f"| {label} | {value:.3f} | {value / full:.2f} |")


if __name__ == "__main__":
    main()
