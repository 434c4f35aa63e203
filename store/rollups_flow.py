"""Segment flow rollups: vehicles per bucket summed over lanes, speed weighted by count.

Each lane's reading times (device, sub_id, observed_at: a minute of the edge agents) are paired
first, so a reading's speed weighs by its own vehicles (a queue forming within a bucket counts
its few slow vehicles as few, as the incident rule does), then summed into segment buckets:
the same arithmetic as the TimescaleDB continuous aggregates (migrations m002, m052), so both
backends give equal numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg
from psycopg import sql

from store.rollups_occupancy import ORIGIN

TRAFFIC_KINDS = ("vehicle_count", "mean_speed", "detector_occupancy")

SCOPE = """
CREATE TEMP TABLE _flow_scope ON COMMIT DROP AS
SELECT segment_id, date_bin('5 minutes', min(start_at), %(origin)s::timestamptz) AS start_at
FROM (
    SELECT d.segment_id, n.first_at AS start_at
    FROM _rollup_new n JOIN devices d ON d.device_id = n.device_id
    WHERE n.kind = ANY(%(kinds)s)
    UNION ALL
    SELECT segment_id, %(since)s::timestamptz FROM devices
    WHERE %(since)s::timestamptz IS NOT NULL
) touched
WHERE segment_id IS NOT NULL
GROUP BY segment_id
"""

UPSERT_5M = """
INSERT INTO flow_5m AS f (segment_id, bucket, vehicle_count, mean_speed, detector_occupancy,
                          samples, speed_weight, detector_samples)
SELECT segment_id, bucket,
       sum(vehicle_count),
       sum(speed * vehicle_count)
           / nullif(sum(vehicle_count) FILTER (WHERE speed IS NOT NULL), 0),
       sum(detector_sum) / nullif(sum(detector_samples), 0),
       sum(samples)::integer,
       sum(vehicle_count) FILTER (WHERE speed IS NOT NULL),
       sum(detector_samples)::integer
FROM (
    SELECT sc.segment_id, date_bin('5 minutes', r.observed_at, %(origin)s::timestamptz) AS bucket,
           r.device_id, r.sub_id, r.observed_at,
           sum(r.value) FILTER (WHERE r.kind = 'vehicle_count') AS vehicle_count,
           avg(r.value) FILTER (WHERE r.kind = 'mean_speed') AS speed,
           sum(r.value) FILTER (WHERE r.kind = 'detector_occupancy') AS detector_sum,
           count(*) FILTER (WHERE r.kind = 'detector_occupancy') AS detector_samples,
           count(*) AS samples
    FROM _flow_scope sc
    JOIN devices d ON d.segment_id = sc.segment_id
    JOIN readings r ON r.device_id = d.device_id AND r.observed_at >= sc.start_at
    -- the constant lower bound lets the planner range-scan (BRIN, chunks) instead of all rows
    WHERE r.kind = ANY(%(kinds)s) AND r.observed_at >= %(start)s
    GROUP BY 1, 2, 3, 4, 5
) lane_readings
GROUP BY segment_id, bucket
ON CONFLICT (segment_id, bucket) DO UPDATE SET
    vehicle_count = EXCLUDED.vehicle_count, mean_speed = EXCLUDED.mean_speed,
    detector_occupancy = EXCLUDED.detector_occupancy, samples = EXCLUDED.samples,
    speed_weight = EXCLUDED.speed_weight, detector_samples = EXCLUDED.detector_samples
WHERE (f.vehicle_count, f.mean_speed, f.detector_occupancy, f.samples)
    IS DISTINCT FROM (EXCLUDED.vehicle_count, EXCLUDED.mean_speed,
                      EXCLUDED.detector_occupancy, EXCLUDED.samples)
"""

UPSERT_COARSE = """
INSERT INTO {target} AS f (segment_id, bucket, vehicle_count, mean_speed, detector_occupancy,
                           samples, speed_weight, detector_samples)
SELECT s.segment_id, date_bin(%(width)s::interval, s.bucket, %(origin)s::timestamptz) AS b,
       sum(s.vehicle_count),
       sum(s.mean_speed * s.speed_weight) / nullif(sum(s.speed_weight), 0),
       sum(s.detector_occupancy * s.detector_samples) / nullif(sum(s.detector_samples), 0),
       sum(s.samples)::integer,
       sum(s.speed_weight),
       sum(s.detector_samples)::integer
FROM {source} s
JOIN _flow_scope sc ON sc.segment_id = s.segment_id
 AND s.bucket >= date_bin(%(width)s::interval, sc.start_at, %(origin)s::timestamptz)
GROUP BY s.segment_id, b
ON CONFLICT (segment_id, bucket) DO UPDATE SET
    vehicle_count = EXCLUDED.vehicle_count, mean_speed = EXCLUDED.mean_speed,
    detector_occupancy = EXCLUDED.detector_occupancy, samples = EXCLUDED.samples,
    speed_weight = EXCLUDED.speed_weight, detector_samples = EXCLUDED.detector_samples
WHERE (f.vehicle_count, f.mean_speed, f.detector_occupancy, f.samples)
    IS DISTINCT FROM (EXCLUDED.vehicle_count, EXCLUDED.mean_speed,
                      EXCLUDED.detector_occupancy, EXCLUDED.samples)
"""

TIERS = (("flow_1h", "flow_5m", "1 hour"), ("flow_1d", "flow_1h", "1 day"))
CAGGS = (("flow_lanes_5m", "5 minutes"), ("flow_lanes_1h", "1 hour"), ("flow_lanes_1d", "1 day"))


def flow_scope(conn: psycopg.Connection, since: datetime | None) -> datetime | None:
    """Collect the touched segments; return the earliest bucket to recompute, None if none."""
    params = {"origin": ORIGIN, "kinds": list(TRAFFIC_KINDS), "since": since}
    conn.execute(SCOPE, params)
    row = conn.execute("SELECT min(start_at) FROM _flow_scope").fetchone()
    return row[0] if row else None


def refresh_flow_tables(conn: psycopg.Connection, start: datetime) -> None:
    """Recompute flow tables (plain PostgreSQL) for the segments in scope, from `start` on."""
    with conn.cursor() as cur:
        cur.execute(UPSERT_5M, {"origin": ORIGIN, "kinds": list(TRAFFIC_KINDS), "start": start})
        for target, source, width in TIERS:
            query = sql.SQL(UPSERT_COARSE).format(
                target=sql.Identifier(target), source=sql.Identifier(source)
            )
            cur.execute(query, {"width": width, "origin": ORIGIN})


def recompute_flow_tables(conn: psycopg.Connection, start: datetime) -> None:
    """Recompute every segment's flow tables (plain PostgreSQL) from `start`, in the caller's
    transaction (a change of the rollups' arithmetic)."""
    conn.execute(
        "CREATE TEMP TABLE _flow_scope ON COMMIT DROP AS SELECT DISTINCT segment_id,"
        " date_bin('5 minutes', %s::timestamptz, %s::timestamptz) AS start_at"
        " FROM devices WHERE segment_id IS NOT NULL",
        (start, ORIGIN),
    )
    refresh_flow_tables(conn, start)


def refresh_flow_aggregates(conn: psycopg.Connection, start: datetime, until: datetime) -> None:
    """Refresh the continuous aggregates (TimescaleDB) from `start`; needs autocommit."""
    for view, width in CAGGS:
        step = _WIDTHS[width]
        conn.execute(
            "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
            (view, _floor(start, step), _floor(until, step) + step),
        )


_WIDTHS: Final = {
    "5 minutes": timedelta(minutes=5),
    "1 hour": timedelta(hours=1),
    "1 day": timedelta(days=1),
}
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


def _floor(moment: datetime, width: timedelta) -> datetime:
    """Return the start of the bucket holding `moment` (buckets aligned on UTC midnight)."""
    return moment - (moment - _EPOCH) % width
