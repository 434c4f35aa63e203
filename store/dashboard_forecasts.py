"""Reads of stored forecasts and backtests for the dashboard (tables of store.forecasts, m010)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from store.dashboard_reads import Table, fetch
from store.forecast_anchoring import Live, curve, reanchored_at

FLOW_BUCKET: Final = timedelta(minutes=5)
FORECAST_COLUMNS: Final = (
    "series_id", "at", "yhat", "lo80", "hi80", "model", "step_seconds", "anchored",
)  # fmt: skip


def forecast_series(
    conn: psycopg.Connection,
    stream: str,
    series_ids: list[str],
    start: datetime,
    end: datetime,
    stale_after: timedelta,
    now: datetime | None = None,
) -> Table:
    """Return each series' latest forecast in [start, end) with its 80% band and grid step,
    re-anchored on the series' live value.

    A lot's live value is its count now (`lot_live`, as the feeds count); a segment's is its
    latest complete 5-minute bucket (flow scaled to the run's step). A series re-anchored
    starts with a point at the live value's time holding it (`anchored` true) and keeps only
    the points after it; one without a fresh value (older than `stale_after`) or an anchor
    keeps the stored forecast.

    Args:
        stream: 'occupancy', 'occupancy_rate', 'flow' or 'speed'.
        stale_after: how old a live value may be and still anchor the forecast.
        now: the reader's clock (default: now).
    """
    now = now or datetime.now(UTC)
    rows = _stored(conn, stream, series_ids, start, end)
    live = _live(conn, stream, series_ids, now, stale_after)
    out: list[tuple[Any, ...]] = []
    for series_id, group in itertools.groupby(rows, key=lambda row: row[0]):
        points = list(group)
        out += _reanchored(stream, points, live.get(series_id), end)
    return Table(FORECAST_COLUMNS, out)


def _stored(
    conn: psycopg.Connection, stream: str, series_ids: list[str], start: datetime, end: datetime
) -> list[tuple[Any, ...]]:
    """Read each series' latest run in [start, end) with its anchor and the lot's capacity."""
    return fetch(
        conn,
        "SELECT f.series_id, f.at, f.yhat, f.lo80, f.hi80, f.model, r.step_seconds, "
        "a.observed_at, a.observed_value, a.half_life_s, l.capacity FROM forecasts f "
        "JOIN forecast_runs r USING (run_id) "
        "JOIN (SELECT DISTINCT ON (f2.series_id) f2.series_id, f2.run_id FROM forecasts f2 "
        "      JOIN forecast_runs r2 USING (run_id) "
        "      WHERE r2.stream = %(stream)s AND f2.series_id = ANY(%(ids)s) "
        "      ORDER BY f2.series_id, r2.data_end DESC, r2.issued_at DESC) latest "
        "USING (series_id, run_id) "
        "LEFT JOIN forecast_anchors a USING (run_id, series_id) "
        "LEFT JOIN lots l ON l.lot_id = f.series_id AND %(stream)s LIKE 'occupancy%%' "
        "WHERE f.at >= %(start)s AND f.at < %(end)s ORDER BY f.series_id, f.at",
        {"stream": stream, "ids": series_ids, "start": start, "end": end},
    ).rows


def _live(
    conn: psycopg.Connection,
    stream: str,
    series_ids: list[str],
    now: datetime,
    stale_after: timedelta,
) -> dict[str, Live]:
    """Return the fresh live value of each series that has one, in the stream's unit."""
    if stream in ("occupancy", "occupancy_rate"):
        rows = fetch(
            conn,
            "SELECT n.lot_id, n.occupied, n.occupancy FROM lot_live n "
            "LEFT JOIN lot_sensors_heard h USING (lot_id) "
            "WHERE n.lot_id = ANY(%s) AND n.occupied IS NOT NULL "
            "AND greatest(n.observed_at, h.heard_at) >= %s",
            (series_ids, now - stale_after),
        ).rows
        column = 1 if stream == "occupancy" else 2
        return {row[0]: Live(float(row[column]), now) for row in rows if row[column] is not None}
    rows = fetch(
        conn,
        "SELECT DISTINCT ON (f.segment_id) f.segment_id, f.bucket, f.vehicle_count, "
        "f.mean_speed FROM flow_5m f WHERE f.segment_id = ANY(%s) AND f.bucket >= %s "
        "AND f.bucket <= %s ORDER BY f.segment_id, f.bucket DESC",
        (series_ids, now - stale_after - FLOW_BUCKET, now - FLOW_BUCKET),
    ).rows
    column = 2 if stream == "flow" else 3
    # flow: vehicles per 5-minute bucket (scaled to the run's step where the forecast is read)
    return {row[0]: Live(float(row[column]), row[1]) for row in rows if row[column] is not None}


def _reanchored(
    stream: str, points: list[tuple[Any, ...]], live: Live | None, end: datetime
) -> list[tuple[Any, ...]]:
    """Return one series' rows, re-anchored on its live value when it can be."""
    series_id, model, step_seconds = points[0][0], points[0][5], int(points[0][6])
    observed_at, observed_value, half_life, capacity = points[0][7:11]
    kept = [(*p[:7], False) for p in points]
    if live is None or observed_at is None:
        return kept
    if stream == "flow":  # a 5-minute count, the forecast counts per step
        live = Live(live.value * step_seconds / FLOW_BUCKET.total_seconds(), live.at)
    upper = {"occupancy": capacity, "occupancy_rate": 1.0}.get(stream)
    times = [p[1].timestamp() for p in points]
    stored = curve(
        times, [p[2] for p in points], [p[3] for p in points], [p[4] for p in points],
        (observed_at, observed_value, half_life),
    )  # fmt: skip
    # the live value's time, then the stored points after it (their own times, exactly)
    moments = [live.at, *(p[1] for p in points if p[1] > live.at)]
    shifted, anchored = reanchored_at(
        stored, live, [m.timestamp() for m in moments], None if upper is None else float(upper)
    )
    if not anchored:
        return kept
    return [
        (series_id, at, p.yhat, p.lo80, p.hi80, model, step_seconds, True)
        for at, p in zip(moments, shifted, strict=True)
        if p is not None and at < end
    ]


def backtest_scores(conn: psycopg.Connection, stream: str) -> Table:
    """Return the backtest scores of the stream's latest run that has them, with the run's
    data window (the data the backtest judged on) and grid.

    series_id '' pools all series and step 0 pools all horizon steps.
    """
    return fetch(
        conn,
        "SELECT b.model, b.series_id, b.step, b.mae, b.rmse, b.mape, b.mase, b.coverage80, "
        "b.points, r.data_end, r.step_seconds, r.data_start, r.horizon FROM backtest_results b "
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


def forecast_skips(conn: psycopg.Connection, stream: str, series_ids: list[str]) -> Table:
    """Return why the latest run of a stream left some series without a forecast: (series_id,
    reason, detail), reason a code of m014 and detail a sentence."""
    return fetch(
        conn,
        "SELECT s.series_id, s.reason, s.detail FROM forecast_skips s "
        "WHERE s.series_id = ANY(%(ids)s) AND s.run_id = (SELECT run_id FROM forecast_runs "
        "  WHERE stream = %(stream)s ORDER BY data_end DESC, issued_at DESC LIMIT 1) "
        "ORDER BY s.series_id",
        {"stream": stream, "ids": series_ids},
    )
