"""Series reads for analytics: lot occupancy and segment flow/speed from the rollup tables,
on a regular grid, as one flat array with offsets per series and gaps masked.

Tiers: 5 and 60 minutes read `*_5m` and `*_1h`; 15 and 30 minutes average the 5-minute buckets
(vehicle counts are scaled to the longer bucket, so a missing 5-minute bucket does not read as
fewer vehicles).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STEPS: Final = (300, 900, 1800, 3600)
# stream -> (rollup table prefix, id column, registry table, measures)
STREAMS: Final = {
    "occupancy": ("occupancy", "lot_id", "lots", ("occupied", "occupancy")),
    "flow": ("flow", "segment_id", "segments", ("vehicle_count", "mean_speed")),
}


@dataclass(frozen=True, slots=True, eq=False)
class SeriesArrays:
    """Series on one grid [start, start + length*step): flat values, offsets, observed mask.

    `capacity` is the reference bound per series (see `read_series`).
    """

    ids: tuple[str, ...]
    values: FloatArray
    indptr: IntArray
    mask: BoolArray
    start: datetime
    step_seconds: int
    capacity: FloatArray


def read_series(
    conn: psycopg.Connection,
    stream: str,
    measure: str,
    ids: list[str],
    start: datetime,
    end: datetime,
    step_seconds: int,
) -> SeriesArrays:
    """Return one measure of some lots or segments over [start, end) at a step.

    Args:
        conn: an open connection.
        stream: 'occupancy' (lots) or 'flow' (segments).
        measure: occupancy: 'occupied' or 'occupancy'; flow: 'vehicle_count' or 'mean_speed'.
        ids: lot or segment ids, in the order wanted.
        start: first bucket (timezone-aware), aligned to the step.
        end: end of the range, exclusive.
        step_seconds: 300, 900, 1800 or 3600.

    Returns:
        Every series over the same grid; buckets without data are NaN and False in `mask`.
        `capacity` holds the lot's spaces for 'occupied', 1 for 'occupancy', the segment's speed
        limit (km/h) for 'mean_speed' and NaN for 'vehicle_count'.
    """
    if stream not in STREAMS or measure not in STREAMS[stream][3]:
        raise ValueError(f"unknown series {stream}.{measure}; see store.series.STREAMS")
    if step_seconds not in STEPS:
        raise ValueError(f"step {step_seconds} s not offered; use one of {STEPS}")
    prefix, id_column, registry, _ = STREAMS[stream]
    length = max(0, int((end - start).total_seconds()) // step_seconds)
    rows = conn.execute(_query(prefix, id_column, measure, step_seconds), {
        "ids": ids, "start": start, "end": end, "step": f"{step_seconds} seconds",
        "factor": step_seconds / 300.0,
    }).fetchall()  # fmt: skip
    grid = _place(rows, len(ids), length, start, step_seconds)
    values = grid.reshape(-1)
    return SeriesArrays(
        ids=tuple(ids),
        values=values,
        indptr=np.arange(len(ids) + 1, dtype=np.int64) * length,
        mask=~np.isnan(values),
        start=start,
        step_seconds=step_seconds,
        capacity=_capacity(conn, registry, id_column, ids, measure),
    )


def _place(
    rows: list[tuple[Any, ...]], n: int, length: int, start: datetime, step: int
) -> FloatArray:
    """Return (series number from 1, epoch, value) rows placed on an (n x length) NaN grid."""
    data = np.array(rows, dtype=np.float64).reshape(-1, 3)
    grid = np.full((n, length), np.nan)
    series = data[:, 0].astype(np.int64) - 1
    slot = ((data[:, 1] - start.timestamp()) // step).astype(np.int64)
    inside = (slot >= 0) & (slot < length)
    grid[series[inside], slot[inside]] = data[inside, 2]
    return grid


def _query(prefix: str, id_column: str, measure: str, step: int) -> sql.Composed:
    """Return the read of one measure at a step, as (series number, epoch, value) rows."""
    tier = "1h" if step == 3600 else "5m"
    scaled = measure == "vehicle_count" and step in (900, 1800)
    value = sql.SQL("avg({}) * %(factor)s" if scaled else "avg({})").format(sql.Identifier(measure))
    return sql.SQL(
        "SELECT array_position(%(ids)s::text[], {id}), "
        "extract(epoch FROM date_bin(%(step)s::interval, bucket, %(start)s)), {value} "
        "FROM {table} WHERE {id} = ANY(%(ids)s) AND bucket >= %(start)s AND bucket < %(end)s "
        "AND {measure} IS NOT NULL GROUP BY 1, 2"
    ).format(
        id=sql.Identifier(id_column),
        value=value,
        table=sql.Identifier(f"{prefix}_{tier}"),
        measure=sql.Identifier(measure),
    )


def read_capacities(
    conn: psycopg.Connection, ids: list[str], start: datetime, end: datetime, step_seconds: int
) -> FloatArray:
    """Return each lot's capacity per slot of [start, end) at a step, from `occupancy_5m`.

    A (lots x slots) grid in the order of `ids`; a slot holds the largest capacity among its
    5-minute buckets (NaN: no bucket). The capacity is the one the rollup read when the bucket
    was written, so it follows the lot's changes (`store.series.read_series` gives today's).
    """
    if step_seconds not in STEPS:
        raise ValueError(f"step {step_seconds} s not offered; use one of {STEPS}")
    length = max(0, int((end - start).total_seconds()) // step_seconds)
    rows = conn.execute(
        "SELECT array_position(%(ids)s::text[], lot_id), "
        "extract(epoch FROM date_bin(%(step)s::interval, bucket, %(start)s)), max(capacity) "
        "FROM occupancy_5m WHERE lot_id = ANY(%(ids)s) AND bucket >= %(start)s "
        "AND bucket < %(end)s GROUP BY 1, 2",
        {"ids": ids, "start": start, "end": end, "step": f"{step_seconds} seconds"},
    ).fetchall()
    grid = _place(rows, len(ids), length, start, step_seconds)
    return grid


def _capacity(
    conn: psycopg.Connection, registry: str, id_column: str, ids: list[str], measure: str
) -> FloatArray:
    """Return each series' reference bound: spaces for 'occupied', 1 for a rate, the speed limit
    in km/h for 'mean_speed', else NaN (unknown lots and segments get NaN too)."""
    if measure == "occupancy":
        return np.ones(len(ids))
    column = {"occupied": "capacity", "mean_speed": "speed_limit_kmh"}.get(measure)
    if column is None:
        return np.full(len(ids), np.nan)
    rows = conn.execute(
        sql.SQL("SELECT {id}, {column} FROM {table} WHERE {id} = ANY(%s)").format(
            id=sql.Identifier(id_column),
            column=sql.Identifier(column),
            table=sql.Identifier(registry),
        ),
        (ids,),
    ).fetchall()
    known = {str(row[0]): float(row[1]) for row in rows if row[1] is not None}
    return np.array([known.get(i, np.nan) for i in ids])


def active_ids(conn: psycopg.Connection, stream: str) -> list[str]:
    """Return the ids of the active lots ('occupancy') or segments ('flow'), ordered."""
    _, id_column, registry, _ = STREAMS[stream]
    rows = conn.execute(
        sql.SQL("SELECT {id} FROM {table} WHERE active ORDER BY {id}").format(
            id=sql.Identifier(id_column), table=sql.Identifier(registry)
        )
    ).fetchall()
    return [str(row[0]) for row in rows]
