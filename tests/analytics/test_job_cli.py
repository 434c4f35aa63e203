"""`streetsense analytics run` end to end: a subprocess against a real database whose rollups
were filled from readings through store.writes and store.rollups.refresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from store import rollups
from store.writes import write_readings
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.readings import Reading

DAYS = 3
CAPACITY = 200
SPEED_LIMIT = 50.0


def city_settings(database_url: str) -> Settings:
    """Return settings for the test database on plain PostgreSQL."""
    return with_overrides(
        load_settings(None, environ={}), database={"url": database_url, "timescale": "off"}
    )


def fill_city(database_url: str) -> datetime:
    """Register a lot with a counter and a segment with a detector, write three days of
    readings up to now, refresh the rollups; return the time of the last reading."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(minutes=5 * k) for k in range(DAYS * 288)][::-1]
    hour = np.array([t.hour + t.minute / 60 for t in times])
    daily = np.sin(2 * np.pi * (hour - 8) / 24)
    readings = []
    for t, wave in zip(times, daily, strict=True):
        readings.append(Reading("counter-1", "occupied_spaces", t, round(100 + 80 * wave)))
        readings.append(Reading("detector-1", "vehicle_count", t, round(30 + 25 * wave), "1"))
        readings.append(Reading("detector-1", "mean_speed", t, 45.0 - 10 * wave, "1"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("INSERT INTO sites (site_id, name) VALUES ('s1', 'Site')")
            conn.execute(
                "INSERT INTO lots (lot_id, site_id, name, kind, capacity, lat, lon) "
                "VALUES ('lot-1', 's1', 'Lot', 'off_street', %s, 56.15, 10.2)",
                (CAPACITY,),
            )
            conn.execute(
                "INSERT INTO segments (segment_id, site_id, name, coordinates, speed_limit_kmh, "
                "capacity_vph) VALUES ('seg-1', 's1', 'Road', '[[10.2, 56.1], [10.3, 56.2]]', "
                "%s, 1800)",
                (SPEED_LIMIT,),
            )
            conn.execute(
                "INSERT INTO devices (device_id, site_id, kind, lot_id, segment_id) VALUES "
                "('counter-1', 's1', 'counter', 'lot-1', NULL), "
                "('detector-1', 's1', 'traffic', NULL, 'seg-1')"
            )
            write_readings(conn, readings, [now] * len(readings))
        rollups.refresh(conn, city_settings(database_url), until=now)
    return now


def job_environment(database_url: str, timezone: str = "Europe/Copenhagen") -> dict[str, str]:
    """Return the environment the job runs in: this test's database, the city's zone."""
    return {
        **os.environ,
        "STREETSENSE_DATABASE_URL": database_url,
        "STREETSENSE_DATABASE_TIMESCALE": "off",
        "STREETSENSE_CITY_TIMEZONE": timezone,
    }


def streetsense(*args: str) -> list[str]:
    """Return the command line of `streetsense` run by this interpreter."""
    return [sys.executable, "-m", "streetsense.cli", *args]


def test_run_once_stores_forecasts_and_backtests_with_their_window(
    database_url: str, tmp_path: Path
) -> None:
    fill_city(database_url)
    started = datetime.now(UTC)
    # The city's school holidays around today: read, estimated, and (ordinary data) not used.
    periods = tmp_path / "holidays.csv"
    first, last = started.date() - timedelta(days=1), started.date() + timedelta(days=1)
    periods.write_text(f"name,start,end,kind\nFerien,{first},{last},school\n")
    done = subprocess.run(
        streetsense("analytics", "run", "--once"),
        env={**job_environment(database_url), "STREETSENSE_CITY_SPECIAL_DAYS": str(periods)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "city.special_days: 1 periods of ['school']" in done.stderr
    with psycopg.connect(database_url) as conn:
        runs = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT stream, run_id, step_seconds, data_start, data_end, horizon, model, "
                "metric, unit, series FROM forecast_runs"
            )
        }
        assert set(runs) == {"occupancy", "occupancy_rate", "flow", "speed"}
        for stream, (_, step, start, end, horizon, model, *_rest) in runs.items():
            # The data window ends at the last whole step before the job ran and spans 28 days.
            assert started - timedelta(seconds=step) < end <= datetime.now(UTC), stream
            assert end - start == timedelta(days=28), stream
            assert model == "auto"
            count = conn.execute(
                "SELECT count(*) FROM forecasts WHERE run_id = %s", (runs[stream][0],)
            ).fetchone()
            assert count == (horizon,), stream
        # (step, horizon): 24 h of 15 min for parking, 3 h of 5 min for traffic.
        assert {stream: (runs[stream][1], runs[stream][4]) for stream in runs} == {
            "occupancy": (900, 96),
            "occupancy_rate": (900, 96),
            "flow": (300, 36),
            "speed": (300, 36),
        }
        assert {stream: runs[stream][6:8] for stream in runs} == {
            "occupancy": ("occupied", "spaces"),
            "occupancy_rate": ("occupancy", "ratio"),
            "flow": ("vehicle_count", "vehicles"),
            "speed": ("mean_speed", "km/h"),
        }
        bands = {
            stream: np.array(
                conn.execute(
                    "SELECT lo80, yhat, hi80 FROM forecasts WHERE run_id = %s ORDER BY at",
                    (runs[stream][0],),
                ).fetchall()
            )
            for stream in runs
        }
        scored = {
            row[0]
            for row in conn.execute(
                "SELECT r.stream FROM backtest_results b JOIN forecast_runs r USING (run_id) "
                "WHERE b.model = 'auto' AND b.series_id = '' AND b.step = 0 AND b.points > 0"
            )
        }
    assert scored == {"occupancy", "flow", "speed"}
    for band in bands.values():
        assert (band[:, 0] <= band[:, 1]).all() and (band[:, 1] <= band[:, 2]).all()
    assert (bands["occupancy"] >= 0).all() and (bands["occupancy"] <= CAPACITY).all()
    np.testing.assert_allclose(bands["occupancy_rate"], bands["occupancy"] / CAPACITY)
    assert (bands["speed"] >= 0).all() and (bands["speed"] <= 1.5 * SPEED_LIMIT).all()
    # The speed pattern (35-55 km/h) is learnt, not flattened to a constant.
    assert 30 < bands["speed"][:, 1].min() < bands["speed"][:, 1].max() < 60


def test_unknown_city_time_zone_is_refused_with_the_fix(database_url: str) -> None:
    done = subprocess.run(
        streetsense("analytics", "run", "--once"),
        env=job_environment(database_url, timezone="Mars/Olympus"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "city.timezone: unknown time zone 'Mars/Olympus'" in done.stderr
    assert "STREETSENSE_CITY_TIMEZONE" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_special_days_file_is_refused_with_the_setting_and_line(
    database_url: str, tmp_path: Path
) -> None:
    periods = tmp_path / "holidays.ics"
    periods.write_text("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:2024-10-14\r\nEND:VEVENT\r\n")
    done = subprocess.run(
        streetsense("analytics", "run", "--once"),
        env={**job_environment(database_url), "STREETSENSE_CITY_SPECIAL_DAYS": str(periods)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert (
        f"city.special_days: {periods}, line 2: DTSTART '2024-10-14' is not a date" in done.stderr
    )
    assert "Traceback" not in done.stderr


def runs_stored(database_url: str) -> int:
    """Return how many forecast runs the database holds."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM forecast_runs").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_loop_stops_cleanly_on_signal(database_url: str, signum: int) -> None:
    fill_city(database_url)
    job = subprocess.Popen(
        streetsense("analytics", "run", "--interval", "3600"),
        env=job_environment(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while runs_stored(database_url) < 4 and job.poll() is None:
            assert time.monotonic() < deadline, "the first round never finished"
            time.sleep(0.5)
        # The round is done; the loop now waits an hour for the next one, until the signal.
        job.send_signal(signum)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0, stderr
    assert "stopping after the current forecast" in stderr and "analytics job stopped" in stderr
    assert "Traceback" not in stderr


def test_run_loop_takes_its_interval_from_the_settings(database_url: str) -> None:
    fill_city(database_url)
    env = {**job_environment(database_url), "STREETSENSE_ANALYTICS_INTERVAL_S": "1"}
    job = subprocess.Popen(
        streetsense("analytics", "run"), env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        # Each round replaces the four runs of the same data window, with new ids.
        while max_run_id(database_url) <= 4 and job.poll() is None:
            assert time.monotonic() < deadline, "no second round within the deadline"
            time.sleep(0.5)
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 0, stderr
    assert max_run_id(database_url) > 4


def max_run_id(database_url: str) -> int:
    """Return the highest forecast run id so far, 0 before any."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(run_id), 0) FROM forecast_runs").fetchone()
    return int(row[0]) if row else 0
