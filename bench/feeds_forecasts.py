"""What re-anchored forecasts cost the feeds at city scale (2,000 lots, 5,000 segments).

Usage: .venv/bin/python bench/feeds_forecasts.py [--lots 2000] [--segments 5000]
       [--baseline REF] [--rounds 5]

Builds a database with the simulator's city registry, an hour of synthetic 5-minute flow and
the latest forecast runs with anchors (occupancy: 96 steps of 15 min; flow and speed: 36 of
5 min), then times, in a child process per checkout, what the feed engine does with them: the
context read every 30 s (`feeds.sources.read_context`) and the rebuild of every segment's view
(`segment_views`, which now re-anchors flow and speed) and, in checkouts that have it, every
lot's forecast (`feeds.forecast_view.lot_forecast`, built with each lot's view). The baseline
is another commit (default 3e30ad6, before re-anchoring), extracted with `git archive`; the
two checkouts alternate, so the shared box's load falls on both. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import synthetic_rollups  # noqa: E402
from simulators.city import CitySpec, generate_city  # noqa: E402
from simulators.registry_file import registry_tables  # noqa: E402
from store.forecasts import Anchors, Run, write_run  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.registry import store_registry  # noqa: E402
from streetsense.config import load_settings, with_overrides  # noqa: E402
from streetsense.registry import parse_registry  # noqa: E402

log = logging.getLogger("bench.feeds_forecasts")

# Run inside a checkout (its own feeds/ and store/ on sys.path): time each phase once.
CHILD = """
import json, sys, time
from datetime import UTC, datetime
import psycopg
from feeds import sources
from store import feeds_reads
url = sys.argv[1]
with psycopg.connect(url, autocommit=True, options="-c jit=off") as conn:
    lots = feeds_reads.read_lots(conn)
    segments = feeds_reads.read_segments(conn)
    capacities = {lot.lot_id: lot.capacity for lot in lots}
    started = time.perf_counter()
    context = sources.read_context(conn, capacities)
    read = time.perf_counter() - started
now = datetime.now(UTC)
started = time.perf_counter()
views = sources.segment_views(segments, context, now, 900)
built = time.perf_counter() - started
import os
for module in (sources, feeds_reads):
    assert module.__file__.startswith(os.getcwd()), module.__file__  # this checkout's code
lot_s = 0.0
if hasattr(context, "lot_curves"):  # lot forecasts are built with each lot's view
    from feeds.forecast_view import lot_forecast
    started = time.perf_counter()
    for lot in lots:
        lot_forecast(context.lot_curves.get(lot.lot_id), "", lot.capacity, lot.capacity // 2,
                     now, stale=False)
    lot_s = time.perf_counter() - started
speeds = sum(1 for v in views if getattr(v, "speed_forecast", None) is not None
             and v.speed_forecast.values[0] is not None)
flows = sum(1 for v in views if v.forecast.values[0] is not None)
print(json.dumps({"read": read, "segments": built, "lots": lot_s, "flows": flows,
                  "speeds": speeds}))
"""


def build(admin: str, lots: int, segments: int) -> str:
    """Create and fill the benchmark database; return its URL."""
    name = f"ss_bench_feedsfc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    settings = with_overrides(load_settings(None, environ={}), database={"url": url})
    city = generate_city(CitySpec(seed=11, lots=lots, segments=segments, lamps_per_segment=0))
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    with psycopg.connect(url) as conn:
        migrate(conn, with_overrides(settings, database={"timescale": "off"}).database)
        store_registry(conn, parse_registry(registry_tables(city)), "bench")
        synthetic_rollups.fill_rollup(conn, "flow", "5m", end - timedelta(hours=1), end)
        conn.commit()
        lot_ids = [lot.id for lot in city.lots]
        segment_ids = [segment.id for segment in city.segments]
        for stream, ids, step, horizon in (
            ("occupancy", lot_ids, 900, 96), ("flow", segment_ids, 300, 36),
            ("speed", segment_ids, 300, 36),
        ):  # fmt: skip
            _forecasts(conn, stream, ids, step, horizon, end)
        conn.commit()
    return url


def _forecasts(
    conn: psycopg.Connection, stream: str, ids: list[str], step: int, horizon: int, end: datetime
) -> None:
    rng = np.random.default_rng(5)
    mean = rng.uniform(10, 60, (len(ids), horizon))
    run = Run(stream, step, datetime.now(UTC), end - timedelta(days=28), end, horizon, "auto")
    observed = np.full(len(ids), (end - timedelta(seconds=step)).timestamp())
    anchors = Anchors(observed, mean[:, 0] * 0.9, rng.uniform(600, 7200, len(ids)))
    write_run(conn, run, ids, mean, mean * 0.8, mean * 1.2, ["auto"] * len(ids),
              anchors=anchors)  # fmt: skip


def extract(ref: str, into: Path) -> Path:
    """Write the feeds, store, streetsense and simulators of a commit into a folder."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "feeds", "store", "streetsense"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(checkout: Path, url: str) -> dict[str, float]:
    """Time one round of the feed engine's forecast work in a checkout."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url], check=False, cwd=checkout, capture_output=True,
        text=True, env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"{checkout}: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Build, measure both checkouts alternately, print the table, drop the database."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--lots", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--baseline", default="3e30ad6")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    url = build(args.admin, args.lots, args.segments)
    log.info("built in %.0f s", time.monotonic() - started)
    try:
        with tempfile.TemporaryDirectory() as folder:
            checkouts = {"baseline": extract(args.baseline, Path(folder)), "this": REPO}
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
            for index in range(args.rounds):
                for name, checkout in checkouts.items():
                    rounds[name].append(measure(checkout, url))
                log.info("round %d of %d", index + 1, args.rounds)
    finally:
        with psycopg.connect(args.admin, autocommit=True) as conn:
            name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    print("| checkout | context read (s) | segment views (s) | lot forecasts (s) | total (s) | "
          "ratio | segments with flow / speed forecast |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    totals = {
        name: statistics.median(r["read"] + r["segments"] + r["lots"] for r in runs)
        for name, runs in rounds.items()
    }
    for name, runs in rounds.items():
        read, views, lots = (statistics.median(r[k] for r in runs) for k in ("read", "segments",
                                                                               "lots"))  # fmt: skip
        print(f"| {name} | {read:.2f} | {views:.2f} | {lots:.2f} | {totals[name]:.2f} | "
              f"{totals[name] / totals['baseline']:.2f} | {int(runs[0]['flows'])} / "
              f"{int(runs[0]['speeds'])} |")  # fmt: skip


if __name__ == "__main__":
    main()
