"""Series reads, forecast storage and the job, against the real PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from analytics.job import Target, forecast_target, run_once
from store.forecasts import (
    Anchor,
    Run,
    Score,
    latest_anchors,
    latest_forecasts,
    latest_scores,
    latest_skips,
    prune_runs,
    reanchor_shift,
    write_run,
)
from store.series import read_series

START = datetime(2024, 1, 1, tzinfo=UTC)


def add_lots(db: psycopg.Connection, capacities: dict[str, int]) -> None:
    """Register a site and some lots."""
    db.execute("INSERT INTO sites (site_id, name) VALUES ('s1', 'Site')")
    for lot_id, capacity in capacities.items():
        db.execute(
            "INSERT INTO lots (lot_id, site_id, name, kind, capacity, lat, lon) "
            "VALUES (%s, 's1', %s, 'off_street', %s, 56.15, 10.2)",
            (lot_id, lot_id, capacity),
        )


def add_occupancy(
    db: psycopg.Connection,
    lot_id: str,
    values: list[float | None],
    start: datetime = START,
    capacity: list[int] | None = None,
) -> None:
    """Write 5-minute occupancy buckets from `start`; None leaves a gap.

    `capacity` is each bucket's capacity as the rollup recorded it (default: 100 throughout).
    """
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY occupancy_5m (lot_id, bucket, occupied, capacity, occupancy, samples) FROM STDIN"
        ) as copy,
    ):
        for i, value in enumerate(values):
            if value is not None:
                bucket = start + timedelta(minutes=5 * i)
                spaces = 100 if capacity is None else capacity[i]
                copy.write_row((lot_id, bucket, value, spaces, value / spaces, 1))


def test_read_series_places_buckets_and_masks_gaps(db: psycopg.Connection) -> None:
    add_lots(db, {"a": 100, "b": 50})
    add_occupancy(db, "a", [10.0, 20.0, None, 40.0, 50.0, 60.0])
    add_occupancy(db, "b", [None, None, None, 5.0])
    end = START + timedelta(minutes=30)
    five = read_series(db, "occupancy", "occupied", ["b", "a", "c"], START, end, 300)
    np.testing.assert_array_equal(five.indptr, [0, 6, 12, 18])
    np.testing.assert_array_equal(five.values[6:12], [10, 20, np.nan, 40, 50, 60])
    assert not five.mask[8] and five.mask[6]
    assert np.isnan(five.values[12:]).all()  # unknown lot: all gaps
    np.testing.assert_array_equal(five.capacity[:2], [50.0, 100.0])
    fifteen = read_series(db, "occupancy", "occupied", ["a"], START, end, 900)
    np.testing.assert_array_equal(fifteen.values, [15.0, 50.0])  # averages of what is there


def test_write_and_read_latest_forecasts(db: psycopg.Connection) -> None:
    end = START + timedelta(days=1)
    run = Run("occupancy", 900, end, START, end, 2, "auto")
    mean = np.array([[1.0, 2.0], [np.nan, np.nan]])
    scores = [Score("auto", "", 0, 1.5, 2.0, None, 0.5, 0.8, 10)]
    first = write_run(
        db, run, ["a", "b"], mean, mean - 1, mean + 1, ["profile_es", "naive"], scores
    )
    again = write_run(db, run, ["a", "b"], mean + 1, mean, mean + 2, ["auto", "auto"], scores)
    assert again != first  # the rerun replaced the run of the same window
    rows = latest_forecasts(db, "occupancy", ["a", "b"], end, end + timedelta(hours=1))
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("a", end, 2.0, 1.0, 3.0),
        ("a", end + timedelta(minutes=15), 3.0, 2.0, 4.0),
    ]
    assert db.execute("SELECT count(*) FROM forecast_runs").fetchone() == (1,)
    assert latest_scores(db, "occupancy") == [("auto", "", 0, 1.5, 2.0, None, 0.5, 0.8, 10)]


def test_job_forecasts_lots_from_rollups(db: psycopg.Connection) -> None:
    add_lots(db, {"a": 100})
    days = 9
    t = np.arange(days * 288)
    values = 50 + 30 * np.sin(2 * np.pi * t / 288)
    add_occupancy(db, "a", [float(v) for v in values])
    now = START + timedelta(days=days)
    target = Target("occupancy", "occupied", 900, timedelta(hours=6), timedelta(days=days))
    run_id = forecast_target(db, target, now, backtest_folds=1)
    assert run_id is not None
    rows = latest_forecasts(db, "occupancy", ["a"], now, now + timedelta(days=1))
    assert len(rows) == 24
    assert rows[0][1] == now
    expected = 50 + 30 * np.sin(2 * np.pi * (t[-1] + 1 + 1.5) / 288)  # mean of the first 15 min
    assert abs(rows[0][2] - expected) < 5
    assert all(0 <= r[3] <= r[2] <= r[4] <= 100 for r in rows)
    window = db.execute(
        "SELECT data_start, data_end, model FROM forecast_runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    assert window == (START, now, "auto")
    pooled = [r for r in latest_scores(db, "occupancy") if r[1] == "" and r[2] == 0]
    assert {r[0] for r in pooled} >= {"auto", "snaive_week", "profile_es"}


def test_new_metrics_stay_out_of_existing_reads(db: psycopg.Connection) -> None:
    """Speed runs (m011) have a stream of their own: 'flow' readers still get vehicle counts."""
    end = START + timedelta(days=1)
    mean = np.array([[12.0, 14.0]])
    flow = write_run(
        db, Run("flow", 300, end, START, end, 2, "auto"), ["s"], mean, mean, mean, ["a"]
    )
    speed = Run("speed", 300, end + timedelta(seconds=1), START, end, 2, "auto")
    write_run(db, speed, ["s"], mean + 30, mean + 20, mean + 40, ["auto"])
    rows = latest_forecasts(db, "flow", ["s"], end, end + timedelta(hours=1))
    assert [r[2] for r in rows] == [12.0, 14.0]
    rows = latest_forecasts(db, "speed", ["s"], end, end + timedelta(hours=1))
    assert [r[2:5] for r in rows] == [(42.0, 32.0, 52.0), (44.0, 34.0, 54.0)]
    described = db.execute(
        "SELECT stream, metric, unit FROM forecast_runs ORDER BY run_id"
    ).fetchall()
    assert described == [("flow", "vehicle_count", "vehicles"), ("speed", "mean_speed", "km/h")]
    assert flow > 0
    with pytest.raises(psycopg.errors.IntegrityError):  # an unknown stream is refused
        write_run(db, Run("noise", 300, end, START, end, 2, "auto"), ["s"], mean, mean, mean, ["a"])


def test_a_stop_requested_during_a_round_leaves_the_remaining_targets(
    db: psycopg.Connection,
) -> None:
    add_lots(db, {"a": 100})
    recent = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY occupancy_5m (lot_id, bucket, occupied, capacity, occupancy, samples) FROM STDIN"
        ) as copy,
    ):
        for k in range(288):
            copy.write_row(("a", recent + timedelta(minutes=5 * k), 50.0, 100, 0.5, 1))
    stop = threading.Event()
    refreshed = []

    def refresh(conn: psycopg.Connection, now: datetime) -> None:
        refreshed.append(now)
        stop.set()  # as if SIGTERM arrived while the rollups were refreshed

    assert run_once(db, refresh, stop=stop) == []
    assert len(refreshed) == 1
    assert db.execute("SELECT count(*) FROM forecast_runs").fetchone() == (0,)


def test_the_job_follows_the_analytics_settings(db: psycopg.Connection) -> None:
    from streetsense.config import AnalyticsSettings

    add_lots(db, {"a": 100})
    recent = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY occupancy_5m (lot_id, bucket, occupied, capacity, occupancy, samples) FROM STDIN"
        ) as copy,
    ):
        for k in range(3 * 288):
            copy.write_row(("a", recent + timedelta(minutes=5 * k), 40.0 + k % 12, 100, 0.5, 1))
    settings = AnalyticsSettings(history_days=2, parking_horizon_h=6, parking_step_min=30)
    assert run_once(db, settings=settings)
    step, horizon, window = db.execute(
        "SELECT step_seconds, horizon, data_end - data_start FROM forecast_runs "
        "WHERE stream = 'occupancy'"
    ).fetchone()  # type: ignore[misc]
    assert (step, horizon, window) == (1800, 12, timedelta(days=2))


def test_runs_store_their_anchors_and_readers_can_reanchor(db: psycopg.Connection) -> None:
    """The job stores each series' latest observation and fitted half-life (m013)."""
    add_lots(db, {"a": 100, "b": 100})
    days = 9
    t = np.arange(days * 288)
    values = [float(v) for v in 50 + 30 * np.sin(2 * np.pi * t / 288)]
    add_occupancy(db, "a", [*values[:-3], None, None, None])  # the last 15 minutes missing
    add_occupancy(db, "b", [None] * len(values))
    now = START + timedelta(days=days)
    target = Target("occupancy", "occupied", 300, timedelta(hours=1), timedelta(days=days),
                    rate_product="occupancy_rate")  # fmt: skip
    assert forecast_target(db, target, now, backtest_folds=0) is not None
    anchors = latest_anchors(db, "occupancy", ["a", "b"])
    assert set(anchors) == {"a"}  # no observation, no anchor
    anchor = anchors["a"]
    assert anchor.observed_at == START + timedelta(minutes=5 * (len(values) - 4))
    assert anchor.observed_value == pytest.approx(values[-4])
    assert anchor.half_life_s is None or anchor.half_life_s > 0
    rate = latest_anchors(db, "occupancy_rate", ["a"])["a"]
    assert rate.observed_value == pytest.approx(values[-4] / 100)
    # A reader with a live value 10 above the forecast shifts the next points by a fading 10.
    fading = Anchor(anchor.observed_at, anchor.observed_value, 600.0)
    assert reanchor_shift(fading, 40.0, 50.0, now, now) == pytest.approx(10.0)
    assert reanchor_shift(fading, 40.0, 50.0, now, now + timedelta(minutes=10)) == pytest.approx(
        5.0
    )
    assert reanchor_shift(fading, 40.0, 50.0, now, now - timedelta(minutes=5)) == 0.0
    lasting = Anchor(anchor.observed_at, anchor.observed_value, None)
    assert reanchor_shift(lasting, 40.0, 50.0, now, now + timedelta(days=1)) == 10.0


def test_series_without_a_trustworthy_history_get_a_stored_reason(db: psycopg.Connection) -> None:
    """No reading, less than a day, one value throughout: no forecast row, a reason (m014)."""
    add_lots(db, {"good": 100, "empty": 100, "new": 100, "stuck": 100})
    days = 9
    t = np.arange(days * 288)
    add_occupancy(db, "good", [float(v) for v in 50 + 30 * np.sin(2 * np.pi * t / 288)])
    add_occupancy(db, "empty", [None] * t.size)
    add_occupancy(db, "new", [None] * (t.size - 100) + [float(v % 7) for v in range(100)])
    add_occupancy(db, "stuck", [42.0] * t.size)
    now = START + timedelta(days=days)
    target = Target("occupancy", "occupied", 300, timedelta(hours=1), timedelta(days=days),
                    rate_product="occupancy_rate")  # fmt: skip
    assert forecast_target(db, target, now, backtest_folds=0) is not None
    for stream in ("occupancy", "occupancy_rate"):
        skips = latest_skips(db, stream)
        assert {k: v.reason for k, v in skips.items()} == {
            "empty": "no_data", "new": "too_short", "stuck": "constant",
        }  # fmt: skip
        ids = ["good", "empty", "new", "stuck"]
        rows = latest_forecasts(db, stream, ids, START, now + timedelta(days=1))
        assert {row[0] for row in rows} == {"good"}
        assert all(np.isfinite(row[2]) for row in rows)
    assert set(latest_anchors(db, "occupancy", ["good", "new", "stuck"])) == {"good"}


def _old_run(db: psycopg.Connection, stream: str, model: str, issued: datetime) -> int:
    """Store a run issued at `issued` with one forecast point; return its id."""
    (run_id,) = db.execute(
        "INSERT INTO forecast_runs (stream, step_seconds, issued_at, data_start, data_end, "
        "horizon, model, series) VALUES (%s, 300, %s, %s, %s, 1, %s, 1) RETURNING run_id",
        (stream, issued, issued - timedelta(days=1), issued, model),
    ).fetchone()  # type: ignore[misc]
    db.execute(
        "INSERT INTO forecasts (run_id, series_id, at, step, yhat, lo80, hi80, model) "
        "VALUES (%s, 'a', %s, 1, 1, 0, 2, %s)",
        (run_id, issued + timedelta(minutes=5), model),
    )
    return int(run_id)


def test_old_forecast_runs_are_pruned_but_never_a_stream_and_models_newest(
    db: psycopg.Connection,
) -> None:
    now = datetime.now(UTC)
    old = [_old_run(db, "flow", "auto", now - timedelta(days=5, minutes=k)) for k in range(45)]
    newest_flow = _old_run(db, "flow", "auto", now - timedelta(days=1))
    lone_old = _old_run(db, "occupancy", "auto", now - timedelta(days=9))  # its stream's newest
    other_model = _old_run(db, "flow", "profile_es", now - timedelta(days=8))
    assert prune_runs(db, now - timedelta(days=2), chunk=10) == len(old)
    left = {row[0] for row in db.execute("SELECT run_id FROM forecast_runs").fetchall()}
    assert left == {newest_flow, lone_old, other_model}
    points = db.execute("SELECT count(*) FROM forecasts WHERE run_id = ANY(%s)", (old,)).fetchone()
    assert points == (0,)  # the runs' forecasts went with them


def test_the_job_deletes_runs_past_the_retention_setting(db: psycopg.Connection) -> None:
    from streetsense.config import AnalyticsSettings

    add_lots(db, {"a": 100})
    now = datetime.now(UTC)
    stale = _old_run(db, "occupancy", "auto", now - timedelta(days=3))
    recent = now.replace(second=0, microsecond=0) - timedelta(days=2)
    add_occupancy(db, "a", [40.0 + k % 12 for k in range(2 * 288)], recent)
    keep_all = AnalyticsSettings(history_days=2, parking_horizon_h=1, forecast_retention_days=0)
    assert run_once(db, settings=keep_all)
    assert db.execute("SELECT 1 FROM forecast_runs WHERE run_id = %s", (stale,)).fetchone()
    two_days = AnalyticsSettings(history_days=2, parking_horizon_h=1, forecast_retention_days=2)
    assert run_once(db, settings=two_days)
    assert db.execute("SELECT 1 FROM forecast_runs WHERE run_id = %s", (stale,)).fetchone() is None
