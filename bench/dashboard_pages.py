"""Dashboard page render times at city scale (2,000 lots, 5,000 segments, a year of rollups).

Usage: .venv/bin/python bench/dashboard_pages.py [--lots 2000] [--segments 5000] [--days 365]
       [--fine-days 7] [--keep]

Builds a benchmark database (the simulator's city registry, synthetic rollup tiers written in
PostgreSQL, device state, forecasts and backtests), then renders every page with AppTest: the
first load (empty caches) and the median of reruns after it. The same pages on the small test
city, in the same run, are the baseline for ratios. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import synthetic_rollups  # noqa: E402
from simulators.city import CitySpec, generate_city  # noqa: E402
from simulators.registry_file import registry_tables  # noqa: E402
from store.device_state import DeviceStateUpdate, upsert_device_state  # noqa: E402
from store.forecasts import Run, Score, write_run  # noqa: E402
from store.migrate import migrate  # noqa: E402
from store.registry import store_registry  # noqa: E402
from streetsense.config import load_settings, with_overrides  # noqa: E402
from streetsense.registry import parse_registry  # noqa: E402

log = logging.getLogger("bench.dashboard")
ENTRY = REPO / "dashboard" / "app.py"
PAGES = ("city_now", "parking", "traffic", "forecast_quality", "devices", "export")
RANGES = ("Last 7 days", "Last 365 days")
RERUNS = 3


def create_database(admin: str) -> str:
    """Create an empty database and return its URL."""
    name = f"ss_bench_dash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(admin, dbname=name)


def drop_database(admin: str, url: str) -> None:
    """Drop a benchmark database."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def timed(label: str, action: Any, *args: Any) -> Any:
    """Run one fill step and log how long it took."""
    started = time.monotonic()
    result = action(*args)
    log.info("%s: %s in %.1f s", label, result, time.monotonic() - started)
    return result


def fill_large(url: str, lots: int, segments: int, days: int, fine_days: int) -> dict[str, int]:
    """Fill the benchmark database; return the row count of every tier."""
    settings = with_overrides(load_settings(None, environ={}), database={"url": url})
    city = generate_city(CitySpec(seed=11, lots=lots, segments=segments, lamps_per_segment=0))
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with psycopg.connect(url) as conn:
        migrate(conn, with_overrides(settings, database={"timescale": "off"}).database)
        conn.autocommit = False
        timed("registry", store_registry, conn, parse_registry(registry_tables(city)), "bench")
        counts = {}
        for stream in ("occupancy", "flow"):
            for tier, span in (("1d", days), ("1h", days), ("5m", fine_days)):
                with conn.transaction():
                    counts[f"{stream}_{tier}"] = timed(
                        f"{stream}_{tier}", synthetic_rollups.fill_rollup, conn, stream, tier,
                        end - timedelta(days=span), end,
                    )  # fmt: skip
        with conn.transaction():
            timed("lot_now", synthetic_rollups.fill_lot_now, conn)
            devices = [device for device, _ in city.devices()]
            upsert_device_state(conn, [_state(d, city.site, end, i) for i, d in enumerate(devices)])
        conn.commit()
        conn.autocommit = True
        for stream, step, horizon in (("occupancy", 900, 96), ("flow", 300, 36)):
            ids = [x.id for x in (city.lots if stream == "occupancy" else city.segments)]
            timed(f"forecasts {stream}", _forecasts, conn, stream, ids, step, horizon, end)
        order(conn)
    return counts


def order(conn: psycopg.Connection) -> None:
    """Lay every rollup out in time order, then refresh the planner's statistics."""
    for stream in ("occupancy", "flow"):
        for tier in ("1d", "1h", "5m"):
            timed(f"cluster {stream}_{tier}", synthetic_rollups.cluster_by_time, conn, stream, tier)
    timed("analyse", synthetic_rollups.analyse, conn)


def row_counts(url: str) -> dict[str, int]:
    """Return the row count of every rollup tier of a kept database."""
    with psycopg.connect(url) as conn:
        return {
            f"{stream}_{tier}": synthetic_rollups.rows(conn, stream, tier)
            for stream in ("occupancy", "flow")
            for tier in ("1d", "1h", "5m")
        }


def _state(device: str, site: str, end: datetime, index: int) -> DeviceStateUpdate:
    seen = end - timedelta(minutes=1 if index % 50 else 120)
    status = {"battery": 3.6, "rssi": -70.0, "buffer_depth": 0.0, "buffer_dropped": 0.0}
    return DeviceStateUpdate(device, site, seen, index % 50 != 0, seen, status, seen, 1000, 0)


def _forecasts(
    conn: psycopg.Connection, stream: str, ids: list[str], step: int, horizon: int, end: datetime
) -> int:
    rng = np.random.default_rng(3)
    mean = rng.uniform(10, 200, (len(ids), horizon))
    run = Run(stream, step, end, end - timedelta(days=28), end, horizon, "auto")
    models = ["profile_es", "snaive_week", "profile_ridge"]
    chosen = [models[i % 3] for i in range(len(ids))]
    scores = [
        Score(model, series, 0, float(rng.uniform(1, 30)), None, None, None, 0.8, 96)
        for model in (*models, "auto")
        for series in ("", *ids)
    ] + [
        Score(model, "", h, float(h), None, None, None, 0.8, len(ids))
        for model in (*models, "auto")
        for h in range(1, horizon + 1)
    ]
    return write_run(conn, run, ids, mean, mean * 0.8, mean * 1.2, chosen, scores)


def measure(url: str, timezone: str) -> dict[tuple[str, str], tuple[float, float]]:
    """Return (first load, median rerun) seconds of every page and range."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["STREETSENSE_DATABASE_URL"] = url
    os.environ["STREETSENSE_CITY_TIMEZONE"] = timezone
    results = {}
    for page in PAGES:
        for label in RANGES if page not in ("city_now", "forecast_quality") else RANGES[:1]:
            st.cache_data.clear()
            at = AppTest.from_file(str(ENTRY), default_timeout=300)
            at.run()
            if page != "city_now":
                at.switch_page(f"app_pages/{page}.py")
                at.run()
            if label != RANGES[0]:
                at.selectbox(key="range").set_value(label)
            st.cache_data.clear()
            started = time.monotonic()
            at.run()
            first = time.monotonic() - started
            reruns = []
            for _ in range(RERUNS):
                started = time.monotonic()
                at.run()
                reruns.append(time.monotonic() - started)
            if at.exception:
                raise RuntimeError(f"{page}: {[e.value for e in at.exception]}")
            results[(page, label)] = (first, statistics.median(reruns))
            log.info(
                "%s %s: first %.2f s, rerun %.2f s", page, label, first, results[(page, label)][1]
            )
    return results


def small_city(admin: str) -> str:
    """Fill the small simulated test city (the baseline) and return its URL."""
    from analytics.job import run_once
    from harness import simcity

    url = create_database(admin)
    settings = with_overrides(
        load_settings(None, environ={}), database={"url": url, "timescale": "off"}
    )
    with psycopg.connect(url) as conn:
        migrate(conn, settings.database)
        simcity.fill(conn, settings, simcity.bucket_now())
        conn.autocommit = True
        run_once(conn)
    return url


def main() -> int:
    """Build both databases, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    admin = os.environ.get(
        "STREETSENSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--admin-url", default=admin)
    parser.add_argument("--lots", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--fine-days", type=int, default=7, help="days of the 5-minute tier")
    parser.add_argument("--keep", action="store_true", help="keep the large database")
    parser.add_argument("--reuse", metavar="URL", help="measure a kept large database again")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    logging.getLogger("streamlit").setLevel("ERROR")
    small = small_city(args.admin_url)
    large = args.reuse or create_database(args.admin_url)
    try:
        if args.reuse:
            counts = row_counts(large)
        else:
            counts = fill_large(large, args.lots, args.segments, args.days, args.fine_days)
        baseline = measure(small, "Europe/Copenhagen")
        scaled = measure(large, "Europe/Copenhagen")
    finally:
        drop_database(args.admin_url, small)
        if not (args.keep or args.reuse):
            drop_database(args.admin_url, large)
    print(f"\nScale: {args.lots} lots, {args.segments} segments; rows: " +
          ", ".join(f"{k} {v:,}" for k, v in counts.items()))  # fmt: skip
    print(
        "\n| page | range | first load (s) | after first load (s) | small city after (s) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for key, (first, warm) in scaled.items():
        base = baseline[key][1]
        print(f"| {key[0]} | {key[1]} | {first:.2f} | {warm:.2f} | {base:.2f} | "
              f"{warm / base:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
