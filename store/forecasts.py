"""Forecast runs, forecasts with intervals and backtest results: bulk writes and reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True, slots=True)
class Anchors:
    """Per series, the observation a run's forecasts start from and how fast departures fade.

    `observed_at` is in epoch seconds (NaN: the series had no observation, nothing stored);
    `half_life_s` is NaN or infinite where a departure does not fade (stored as NULL).
    """

    observed_at: FloatArray
    observed_value: FloatArray
    half_life_s: FloatArray


@dataclass(frozen=True, slots=True)
class Skipped:
    """A series a run did not forecast: reason code (m014) and a sentence for people."""

    series_id: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """One series' anchor as read back: time and value observed, half-life (None: no fade)."""

    observed_at: datetime
    observed_value: float
    half_life_s: float | None


def write_run(
    conn: psycopg.Connection,
    run: Run,
    series_ids: Sequence[str],
    mean: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    models: Sequence[str],
    scores: Sequence[Score] = (),
    anchors: Anchors | None = None,
    skipped: Sequence[Skipped] = (),
) -> int:
    """Store one run's forecasts (n, h), scores, anchors and the series it did not forecast
    with their reasons, replacing a run of the same window.

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
        if anchors is not None:
            _write_anchors(conn, run_id, series_ids, anchors)
        if skipped:
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY forecast_skips (run_id, series_id, reason, detail) FROM STDIN"
                ) as copy,
            ):
                for skip in skipped:
                    copy.write_row((run_id, skip.series_id, skip.reason, skip.detail))
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


def _write_anchors(
    conn: psycopg.Connection, run_id: int, series_ids: Sequence[str], anchors: Anchors
) -> None:
    """Copy the anchors of the series that had an observation."""
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY forecast_anchors (run_id, series_id, observed_at, observed_value, half_life_s) "
            "FROM STDIN"
        ) as copy,
    ):
        for i in np.flatnonzero(
            np.isfinite(anchors.observed_at) & np.isfinite(anchors.observed_value)
        ):
            half_life = float(anchors.half_life_s[i])
            observed_at = datetime.fromtimestamp(float(anchors.observed_at[i]), UTC)
            copy.write_row((
                run_id, series_ids[int(i)], observed_at, float(anchors.observed_value[i]),
                half_life if np.isfinite(half_life) and half_life > 0 else None,
            ))  # fmt: skip


def latest_anchors(
    conn: psycopg.Connection, stream: str, series_ids: Sequence[str]
) -> dict[str, Anchor]:
    """Return the anchor of each series' latest run of a stream (series without one left out)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (a.series_id) a.series_id, a.observed_at, a.observed_value, "
        "a.half_life_s FROM forecast_anchors a JOIN forecast_runs r USING (run_id) "
        "WHERE r.stream = %s AND a.series_id = ANY(%s) "
        "ORDER BY a.series_id, r.data_end DESC, r.issued_at DESC",
        (stream, list(series_ids)),
    ).fetchall()
    return {row[0]: Anchor(row[1], float(row[2]), row[3]) for row in rows}


def latest_skips(conn: psycopg.Connection, stream: str) -> dict[str, Skipped]:
    """Return, by series, why the stream's latest run did not forecast it."""
    rows = conn.execute(
        "SELECT s.series_id, s.reason, s.detail FROM forecast_skips s WHERE s.run_id = ("
        "  SELECT r.run_id FROM forecast_runs r WHERE r.stream = %s "
        "  ORDER BY r.data_end DESC, r.issued_at DESC LIMIT 1) ORDER BY s.series_id",
        (stream,),
    ).fetchall()
    return {row[0]: Skipped(row[0], row[1], row[2]) for row in rows}


def reanchor_shift(
    anchor: Anchor, forecast_now: float, live: float, live_at: datetime, at: datetime
) -> float:
    """Return what to add to a forecast point (and its band) at `at`, given a live value.

    `forecast_now` is the stored forecast at `live_at` (the anchor's value before the first
    step). The live value's departure from it fades with the anchor's half-life; points before
    `live_at` are not shifted.
    """
    if at < live_at:
        return 0.0
    departure = live - forecast_now
    if anchor.half_life_s is None:
        return departure
    fade: float = 0.5 ** ((at - live_at).total_seconds() / anchor.half_life_s)
    return departure * fade


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


# A run superseded by a newer one of its stream and model, issued before the cut-off. Its
# forecasts, scores, anchors and skips go with it (ON DELETE CASCADE).
_PRUNE_RUNS = """
DELETE FROM forecast_runs WHERE run_id IN (
    SELECT r.run_id FROM forecast_runs r
    WHERE r.issued_at < %s AND EXISTS (
        SELECT 1 FROM forecast_runs n
        WHERE n.stream = r.stream AND n.model = r.model AND n.issued_at > r.issued_at)
    ORDER BY r.issued_at LIMIT %s)
"""


def prune_runs(conn: psycopg.Connection, before: datetime, chunk: int = 20) -> int:
    """Delete forecast runs issued before `before`, but never a stream and model's newest.

    Each chunk of runs commits on its own, so a long backlog (a job that ran for months before
    retention existed) never holds one huge transaction. Returns how many runs went.
    """
    deleted = 0
    while True:
        with conn.transaction():
            count = conn.execute(_PRUNE_RUNS, (before, chunk)).rowcount
        deleted += count
        if count < chunk:
            return deleted
