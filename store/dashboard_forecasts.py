"""Reads of stored forecasts and backtests for the dashboard (tables of store.forecasts, m010)."""

from __future__ import annotations

from datetime import datetime

import psycopg

from store.dashboard_reads import Table, fetch
from store.forecasts import latest_forecasts


def forecast_series(
    conn: psycopg.Connection,
    stream: str,
    series_ids: list[str],
    start: datetime,
    end: datetime,
) -> Table:
    """Return each series' latest forecast in [start, end) with its 80% band and grid step."""
    rows = latest_forecasts(conn, stream, series_ids, start, end)
    step = fetch(
        conn,
        "SELECT step_seconds FROM forecast_runs WHERE stream = %s "
        "ORDER BY data_end DESC, issued_at DESC LIMIT 1",
        (stream,),
    ).rows
    step_seconds = step[0][0] if step else None
    columns = ("series_id", "at", "yhat", "lo80", "hi80", "model", "step_seconds")
    return Table(columns, [(*row, step_seconds) for row in rows])


def backtest_scores(conn: psycopg.Connection, stream: str) -> Table:
    """Return the backtest scores of the stream's latest run that has them.

    series_id '' pools all series and step 0 pools all horizon steps.
    """
    return fetch(
        conn,
        "SELECT b.model, b.series_id, b.step, b.mae, b.rmse, b.mape, b.mase, b.coverage80, "
        "b.points, r.data_end, r.step_seconds FROM backtest_results b "
        "JOIN forecast_runs r USING (run_id) WHERE b.run_id = ("
        "  SELECT r2.run_id FROM forecast_runs r2 WHERE r2.stream = %(stream)s AND EXISTS ("
        "    SELECT 1 FROM backtest_results x WHERE x.run_id = r2.run_id)"
        "  ORDER BY r2.data_end DESC, r2.issued_at DESC LIMIT 1) "
        "ORDER BY b.model, b.series_id, b.step",
        {"stream": stream},
    )


def chosen_models(conn: psycopg.Connection, stream: str) -> Table:
    """Return the model the latest run of a stream (the newest data window) chose per series."""
    return fetch(
        conn,
        "SELECT f.series_id, min(f.model) AS model, count(*) AS steps, r.data_end, r.issued_at "
        "FROM forecasts f JOIN forecast_runs r USING (run_id) "
        "WHERE f.run_id = (SELECT run_id FROM forecast_runs WHERE stream = %(stream)s "
        "  ORDER BY data_end DESC, issued_at DESC LIMIT 1) "
        "GROUP BY f.series_id, r.data_end, r.issued_at ORDER BY f.series_id",
        {"stream": stream},
    )
