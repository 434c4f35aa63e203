"""Forecast runs, forecasts with intervals and backtest results: bulk writes and reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Run:
    """What produced a set of forecasts: stream, grid, data window, horizon and model."""

    stream: str
    step_seconds: int
    issued_at: datetime
    data_start: datetime
    data_end: datetime
    horizon: int
    model: str


@dataclass(frozen=True, slots=True)
class Score:
    """One backtest result; series_id '' and step 0 mean pooled."""

    model: str
    series_id: str
    step: int
    mae: float | None
    rmse: float | None
    mape: float | None
    mase: float | None
    coverage80: float | None
    points: int


def write_run(
    conn: psycopg.Connection,
    run: Run,
    series_ids: Sequence[str],
    mean: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    models: Sequence[str],
    scores: Sequence[Score] = (),
) -> int:
    """Store one run's forecasts (n, h) and scores, replacing a run of the same window.

    Rows whose forecast is NaN (a series without data) are not stored. Returns the run id.
    """
    with conn.transaction():
        conn.execute(
            "DELETE FROM forecast_runs WHERE stream = %s AND data_end = %s AND model = %s",
            (run.stream, run.data_end, run.model),
        )
        row = conn.execute(
            "INSERT INTO forecast_runs (stream, step_seconds, issued_at, data_start, data_end, "
            "horizon, model, series) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING run_id",
            (
                run.stream, run.step_seconds, run.issued_at, run.data_start, run.data_end,
                run.horizon, run.model, len(series_ids),
            ),
        ).fetchone()  # fmt: skip
        assert row is not None
        run_id = int(row[0])
        step = timedelta(seconds=run.step_seconds)
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY forecasts (run_id, series_id, at, step, yhat, lo80, hi80, model) FROM STDIN"
            ) as copy,
        ):
            for i, series_id in enumerate(series_ids):
                for j in np.flatnonzero(np.isfinite(mean[i])):
                    copy.write_row((
                        run_id, series_id, run.data_end + step * int(j), int(j) + 1,
                        float(mean[i, j]), float(lo[i, j]), float(hi[i, j]), models[i],
                    ))  # fmt: skip
        if scores:
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY backtest_results (run_id, model, series_id, step, mae, rmse, mape, mase, "
                    "coverage80, points) FROM STDIN"
                ) as copy,
            ):
                for s in scores:
                    copy.write_row((
                        run_id, s.model, s.series_id, s.step, s.mae, s.rmse, s.mape, s.mase,
                        s.coverage80, s.points,
                    ))  # fmt: skip
    return run_id


def latest_forecasts(
    conn: psycopg.Connection,
    stream: str,
    series_ids: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[tuple[Any, ...]]:
    """Return (series_id, at, yhat, lo80, hi80, model) of each series' latest run in a range."""
    return conn.execute(
        "SELECT f.series_id, f.at, f.yhat, f.lo80, f.hi80, f.model FROM forecasts f "
        "JOIN (SELECT DISTINCT ON (f2.series_id) f2.series_id, f2.run_id FROM forecasts f2 "
        "      JOIN forecast_runs r2 USING (run_id) "
        "      WHERE r2.stream = %(stream)s AND f2.series_id = ANY(%(ids)s) "
        "      ORDER BY f2.series_id, r2.data_end DESC, r2.issued_at DESC) latest "
        "USING (series_id, run_id) "
        "WHERE f.at >= %(start)s AND f.at < %(end)s ORDER BY f.series_id, f.at",
        {"stream": stream, "ids": list(series_ids), "start": start, "end": end},
    ).fetchall()


def latest_scores(conn: psycopg.Connection, stream: str) -> list[tuple[Any, ...]]:
    """Return (model, series_id, step, mae, rmse, mape, mase, coverage80, points) of the
    stream's latest run that has backtest results."""
    return conn.execute(
        "SELECT b.model, b.series_id, b.step, b.mae, b.rmse, b.mape, b.mase, b.coverage80, "
        "b.points FROM backtest_results b WHERE b.run_id = ("
        "  SELECT r.run_id FROM forecast_runs r WHERE r.stream = %s AND EXISTS ("
        "    SELECT 1 FROM backtest_results x WHERE x.run_id = r.run_id)"
        "  ORDER BY r.data_end DESC, r.issued_at DESC LIMIT 1) "
        "ORDER BY b.model, b.series_id, b.step",
        (stream,),
    ).fetchall()
