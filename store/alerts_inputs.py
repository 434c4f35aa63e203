"""What alert rules are evaluated on: one read per subject type, as columns of numpy arrays.

Times come back as epoch seconds (NaN when unknown) so the evaluator compares whole columns.
Rows come in no particular order: the evaluator places them by id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

Columns = dict[str, npt.NDArray[Any]]

_FLOAT_TYPES = frozenset({"float8", "float4", "numeric", "int4", "int8", "int2"})


def _columns(conn: psycopg.Connection, query: str, params: Any = None) -> Columns:
    cur = conn.execute(query, params)
    rows = cur.fetchall()
    described = cur.description or ()
    # Transposed at C speed; numpy turns a None into NaN in a float column.
    values = list(zip(*rows, strict=True)) if rows else [()] * len(described)
    out: Columns = {}
    for column, column_values in zip(described, values, strict=True):
        info = conn.adapters.types.get(column.type_code)
        kind = info.name if info is not None else ""
        if kind in _FLOAT_TYPES:
            out[column.name] = np.array(column_values, dtype=np.float64)
        elif kind == "bool":
            out[column.name] = np.array([bool(v) for v in column_values], dtype=bool)
        else:
            out[column.name] = np.array(
                ["" if v is None else str(v) for v in column_values], dtype=object
            )
    return out


def lots(conn: psycopg.Connection) -> Columns:
    """Return every active lot: id, site, area, capacity, occupied, and data times (epoch s).

    `data_at` is the newest reading's time or, when later, the last message from any of the
    lot's online sensors (a quiet lot is not stale while its sensors are heard).
    """
    return _columns(
        conn,
        "SELECT l.lot_id AS id, l.site_id, l.area, l.capacity::float8 AS capacity, "
        "n.occupied, extract(epoch FROM n.observed_at)::float8 AS observed_at, "
        "extract(epoch FROM greatest(n.observed_at, h.heard_at))::float8 AS data_at "
        "FROM lots l LEFT JOIN lot_now n USING (lot_id) LEFT JOIN lot_sensors_heard h "
        "USING (lot_id) WHERE l.active",
    )


def segments(conn: psycopg.Connection) -> Columns:
    """Return every active segment: id, site, area, capacity (veh/h), speed limit."""
    return _columns(
        conn,
        "SELECT segment_id AS id, site_id, area, capacity_vph, speed_limit_kmh "
        "FROM segments WHERE active",
    )


def segment_intervals(conn: psycopg.Connection, start: datetime, end: datetime) -> Columns:
    """Return the 5-minute flow rows of active segments with buckets in [start, end)."""
    return _columns(
        conn,
        "SELECT f.segment_id AS id, extract(epoch FROM f.bucket)::float8 AS bucket, "
        "f.vehicle_count, f.mean_speed, f.detector_occupancy FROM flow_5m f "
        "JOIN segments s USING (segment_id) WHERE s.active AND f.bucket >= %s AND f.bucket < %s",
        (start, end),
    )


# Each lane's interval (one row per kind) paired first, so its speed weighs by its own count.
_SEGMENT_READINGS = """
WITH lanes AS (
    SELECT d.segment_id, r.observed_at,
           max(r.value) FILTER (WHERE r.kind = 'vehicle_count') AS vehicles,
           max(r.value) FILTER (WHERE r.kind = 'mean_speed') AS speed,
           max(r.value) FILTER (WHERE r.kind = 'detector_occupancy') AS occupancy
    FROM readings r
    JOIN devices d ON d.device_id = r.device_id
    JOIN segments s ON s.segment_id = d.segment_id
    WHERE s.active AND r.kind IN ('vehicle_count', 'mean_speed', 'detector_occupancy')
      AND r.observed_at >= %(start)s AND r.observed_at < %(end)s
      AND (%(ids)s::text[] IS NULL OR d.segment_id = ANY(%(ids)s::text[]))
    GROUP BY d.segment_id, r.observed_at, r.device_id, r.sub_id
)
SELECT segment_id AS id, extract(epoch FROM observed_at)::float8 AS at,
       sum(vehicles) AS vehicles,
       sum(speed * vehicles) / nullif(sum(vehicles) FILTER (WHERE speed IS NOT NULL), 0)
           AS speed,
       sum(vehicles) FILTER (WHERE speed IS NOT NULL) AS timed,
       avg(occupancy) AS occupancy
FROM lanes WHERE vehicles IS NOT NULL
GROUP BY segment_id, observed_at
"""


def segment_readings(
    conn: psycopg.Connection, start: datetime, end: datetime, ids: Sequence[str] | None = None
) -> Columns:
    """Return the raw traffic readings of active segments (or of the given ones) starting in
    [start, end), lanes of one start summed: vehicles, speed weighted by vehicles (`timed`: the
    vehicles it weighs), mean detector occupancy. Whatever the devices' interval."""
    found = None if ids is None else list(ids)
    return _columns(conn, _SEGMENT_READINGS, {"start": start, "end": end, "ids": found})


# One pass without grouping: a lane's reading under the segment's speed, or over the occupancy.
_SEGMENTS_READING_BEYOND = """
SELECT DISTINCT d.segment_id AS id
FROM readings r
JOIN devices d ON d.device_id = r.device_id
JOIN unnest(%(ids)s::text[], %(below)s::float8[]) AS t(segment_id, below)
    ON t.segment_id = d.segment_id
WHERE r.kind IN ('mean_speed', 'detector_occupancy')
  AND r.observed_at >= %(start)s AND r.observed_at < %(end)s
  AND ((r.kind = 'mean_speed' AND r.value < t.below)
       OR (r.kind = 'detector_occupancy' AND r.value > %(above)s))
"""


def segments_reading_beyond(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    speed_below: Mapping[str, float],
    occupancy_above: float,
) -> list[str]:
    """Return the segments with a lane's reading starting in [start, end) slower than the
    segment's bound in `speed_below` (segments absent or NaN: no speed bound) or with detector
    occupancy above `occupancy_above`. A mean of readings can only cross a bound that one of
    them crosses, so the incident rule judges these segments only."""
    ids = list(speed_below)
    below = [None if math.isnan(v) else float(v) for v in speed_below.values()]
    rows = conn.execute(
        _SEGMENTS_READING_BEYOND,
        {"ids": ids, "below": below, "start": start, "end": end, "above": occupancy_above},
    ).fetchall()
    return [str(r[0]) for r in rows]


# The speed each segment fell to near each judged time, week by week, and of those weekly lows
# the second lowest: what the road reached in at least two of the weeks.
_RECURRENT_LOWS = """
WITH b AS (
    SELECT * FROM unnest(%(buckets)s::timestamptz[], %(weeks)s::int[], %(slots)s::int[])
        AS b(bucket, week, slot)
), weekly AS (
    SELECT f.segment_id, b.week, j.judged, min(f.mean_speed) AS low
    FROM flow_5m f JOIN b USING (bucket)
    JOIN generate_series(0, %(judged)s - 1) AS j(judged)
        ON abs(b.slot - j.judged - %(shift)s) <= %(shift)s
    WHERE f.vehicle_count >= %(min_vehicles)s AND f.mean_speed IS NOT NULL
      AND (%(ids)s::text[] IS NULL OR f.segment_id = ANY(%(ids)s::text[]))
    GROUP BY 1, 2, 3
), ranked AS (
    SELECT segment_id, judged, low,
           row_number() OVER (PARTITION BY segment_id, judged ORDER BY low) AS n
    FROM weekly
)
SELECT r.segment_id AS id, r.judged::float8 AS judged, r.low
FROM ranked r JOIN segments s USING (segment_id) WHERE s.active AND r.n = 2
"""


def recurrent_lows(
    conn: psycopg.Connection,
    last_bucket: datetime,
    judged: int,
    shift: int,
    weeks: int,
    min_vehicles: float,
    ids: Sequence[str] | None = None,
) -> Columns:
    """Return per active segment (or given one) and judged interval (0 the oldest of `judged`,
    ending at `last_bucket`) the second lowest of the weekly lowest speeds within `shift`
    intervals of the same time of week in the last `weeks` weeks, from intervals with
    `min_vehicles` or more. Segments with fewer than two such weeks are absent."""
    step = timedelta(minutes=5)
    slots = range(judged + 2 * shift)
    first = last_bucket - step * (judged - 1 + shift)
    rows = [(first + step * slot - timedelta(weeks=week), week, slot)
            for week in range(1, weeks + 1) for slot in slots]  # fmt: skip
    return _columns(
        conn,
        _RECURRENT_LOWS,
        {
            "buckets": [r[0] for r in rows], "weeks": [r[1] for r in rows],
            "slots": [r[2] for r in rows], "judged": judged, "shift": shift,
            "min_vehicles": min_vehicles, "ids": None if ids is None else list(ids),
        },
    )  # fmt: skip


def segment_latest(
    conn: psycopg.Connection, since: datetime, ids: Sequence[str] | None = None
) -> Columns:
    """Return the newest 5-minute bucket end (epoch s) since `since` of each active segment
    (or of the given ones) that has one."""
    return _columns(
        conn,
        "SELECT f.segment_id AS id, "
        "extract(epoch FROM max(f.bucket) + interval '5 minutes')::float8 AS data_at "
        "FROM flow_5m f JOIN segments s USING (segment_id) WHERE s.active AND f.bucket >= %s "
        "AND (%s::text[] IS NULL OR f.segment_id = ANY(%s)) GROUP BY f.segment_id",
        (since, None if ids is None else list(ids), None if ids is None else list(ids)),
    )


def forecast_band(
    conn: psycopg.Connection, stream: str, at: Sequence[datetime], ended_by: datetime
) -> tuple[Columns, int | None]:
    """Return the forecasts (id, at, yhat, lo80, hi80) of a stream at the given times.

    They come from the newest run whose data ended by `ended_by`, so a forecast never saw the
    data it is compared with. Returns the columns and the run id (None: no run yet).
    """
    if not at:
        return _empty_band(), None
    row = conn.execute(
        "SELECT run_id FROM forecast_runs WHERE stream = %s AND data_end <= %s "
        "ORDER BY data_end DESC, issued_at DESC LIMIT 1",
        (stream, ended_by),
    ).fetchone()
    if row is None:
        return _empty_band(), None
    run_id = int(row[0])
    return (
        _columns(
            conn,
            "SELECT series_id AS id, extract(epoch FROM at)::float8 AS at, yhat, lo80, hi80 "
            "FROM forecasts WHERE run_id = %s AND at = ANY(%s)",
            (run_id, list(at)),
        ),
        run_id,
    )


def _empty_band() -> Columns:
    return {
        "id": np.array([], dtype=object),
        **{k: np.array([], dtype=np.float64) for k in ("at", "yhat", "lo80", "hi80")},
    }


def fill_forecast(
    conn: psycopg.Connection, now: datetime, within: timedelta, above: float
) -> Columns:
    """Return per lot of the newest occupancy-rate run the highest lower band edge in
    (now, now + within] and the first time (epoch s) that edge reaches `above` (NaN: never)."""
    return _columns(
        conn,
        "WITH run AS (SELECT run_id FROM forecast_runs WHERE stream = 'occupancy_rate' "
        "  AND data_end <= %(now)s ORDER BY data_end DESC, issued_at DESC LIMIT 1) "
        "SELECT f.series_id AS id, max(f.lo80) AS lo80, "
        "extract(epoch FROM min(f.at) FILTER (WHERE f.lo80 >= %(above)s))::float8 AS full_at "
        "FROM forecasts f JOIN run USING (run_id) "
        "WHERE f.at > %(now)s AND f.at <= %(until)s GROUP BY f.series_id",
        {"now": now, "until": now + within, "above": above},
    )


# What a device rule asks the database for: only the devices it may concern come back.
DEVICE_CONDITIONS = {
    "offline": "ds.device_id IS NOT NULL AND (NOT ds.online OR ds.last_seen_at < %(limit)s)",
    "battery_below": "(ds.status->>'battery')::float8 < %(limit)s",
    "buffer_depth_above": "(ds.status->>'buffer_depth')::float8 > %(limit)s",
    "buffer_dropped_above": "(ds.status->>'buffer_dropped')::float8 > %(limit)s",
    "listed": "d.device_id = ANY(%(ids)s)",
}


def devices(
    conn: psycopg.Connection, condition: str, limit: Any = None, ids: Any = None
) -> Columns:
    """Return the active devices meeting one of DEVICE_CONDITIONS, with their place, area and
    latest health (epoch s times).

    Args:
        condition: a key of DEVICE_CONDITIONS.
        limit: its threshold (a time for `offline`, a number otherwise).
        ids: the device ids for `listed`.
    """
    where = DEVICE_CONDITIONS[condition]  # a fixed fragment: the values are parameters
    return _columns(
        conn,
        "SELECT d.device_id AS id, d.site_id, d.kind, coalesce(l.area, s.area, '') AS area, "
        "coalesce(d.lot_id, '') AS lot_id, coalesce(d.segment_id, '') AS segment_id, "
        "extract(epoch FROM ds.last_seen_at)::float8 AS last_seen_at, "
        "coalesce(ds.online, true) AS online, "
        "(ds.status->>'battery')::float8 AS battery, "
        "(ds.status->>'buffer_depth')::float8 AS buffer_depth, "
        "(ds.status->>'buffer_dropped')::float8 AS buffer_dropped "
        "FROM devices d LEFT JOIN device_state ds USING (device_id) "
        "LEFT JOIN lots l ON l.lot_id = d.lot_id LEFT JOIN segments s "
        "ON s.segment_id = d.segment_id WHERE d.active AND " + where,
        {"limit": limit, "ids": None if ids is None else list(ids)},
    )


def clock_suspects(conn: psycopg.Connection, since: datetime) -> Columns:
    """Return per device the readings received since `since` flagged with a suspect clock."""
    return _columns(
        conn,
        "SELECT device_id AS id, count(*)::float8 AS flagged FROM readings "
        "WHERE received_at >= %s AND clock_suspect GROUP BY device_id",
        (since,),
    )


def spot_activity(conn: psycopg.Connection, since: datetime) -> Columns:
    """Return per spot sensor since `since`: its lot, readings, and whether its value changed."""
    return _columns(
        conn,
        "SELECT r.device_id AS id, r.sub_id, s.lot_id, count(*)::float8 AS readings, "
        "(min(r.value) <> max(r.value)) AS changed FROM readings r "
        "JOIN spots s ON s.device_id = r.device_id AND s.sensor = r.sub_id "
        "WHERE r.kind = 'occupied' AND r.observed_at >= %s "
        "GROUP BY r.device_id, r.sub_id, s.lot_id",
        (since,),
    )
