"""Lot occupancy rollups: a time-weighted step function per spot or counter, summed per lot.

Runs inside `store.rollups.refresh`'s transaction, on both backends (continuous aggregates
cannot express "the state persists until the next event": that needs window functions).
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

ORIGIN = "2000-01-01 00:00:00+00"  # bucket origin: buckets start on UTC boundaries

# Lots to recompute and the 5 min bucket to start from: lots whose sources got new readings
# (from their earliest observed time), and every lot with state (carried forward to `until`).
SCOPE = """
CREATE TEMP TABLE _occ_scope ON COMMIT DROP AS
SELECT lot_id, date_bin('5 minutes', min(start_at), %(origin)s::timestamptz) AS start_at
FROM (
    SELECT s.lot_id, n.first_at AS start_at
    FROM _rollup_new n
    JOIN occupancy_sources s USING (device_id, kind, sub_id)
    UNION ALL
    SELECT lot_id, %(carry)s FROM occupancy_now
    UNION ALL
    SELECT DISTINCT lot_id, %(since)s::timestamptz FROM occupancy_sources
    WHERE %(since)s::timestamptz IS NOT NULL
) touched
WHERE lot_id IS NOT NULL AND start_at < %(until)s
GROUP BY lot_id
"""

# Each source contributes its last value before the start (its seed) and every reading in
# [start, until); deltas summed in time order give the lot's occupied spaces at every change.
# Bucket boundaries join as zero deltas so no interval crosses a bucket.
LEVEL = """
CREATE TEMP TABLE _occ_level ON COMMIT DROP AS
WITH src AS (
    SELECT sc.lot_id, sc.start_at, o.device_id, o.kind, o.sub_id
    FROM _occ_scope sc JOIN occupancy_sources o ON o.lot_id = sc.lot_id
),
points AS (
    SELECT src.lot_id, src.device_id, src.kind, src.sub_id, src.start_at AS t,
           seed.observed_at AS seen_at, seed.value, false AS sample
    FROM src CROSS JOIN LATERAL (
        SELECT r.observed_at, r.value FROM readings r
        WHERE r.device_id = src.device_id AND r.kind = src.kind AND r.sub_id = src.sub_id
          AND r.observed_at < src.start_at
        ORDER BY r.observed_at DESC LIMIT 1
    ) seed
    UNION ALL
    SELECT src.lot_id, src.device_id, src.kind, src.sub_id, r.observed_at, r.observed_at,
           r.value, true
    -- per source, a range scan of the readings identity index: stable whatever the table size
    FROM src CROSS JOIN LATERAL (
        SELECT r.observed_at, r.value FROM readings r
        WHERE r.device_id = src.device_id AND r.kind = src.kind AND r.sub_id = src.sub_id
          AND r.observed_at >= src.start_at AND r.observed_at < %(until)s
    ) r
),
steps AS (
    SELECT lot_id, t, seen_at, sample,
           value - coalesce(lag(value) OVER (
               PARTITION BY lot_id, device_id, kind, sub_id ORDER BY t, sample), 0) AS delta
    FROM points
    UNION ALL
    SELECT sc.lot_id, b, NULL, false, 0
    FROM _occ_scope sc
    CROSS JOIN LATERAL generate_series(sc.start_at, %(until)s, interval '5 minutes') b
    WHERE b < %(until)s
)
SELECT lot_id, t, seen_at, sample,
       sum(delta) OVER w AS occupied,
       lead(t, 1, %(until)s) OVER w AS t_next,
       row_number() OVER w AS step
FROM steps
WINDOW w AS (PARTITION BY lot_id ORDER BY t, sample ROWS UNBOUNDED PRECEDING)
"""

UPSERT_5M = """
INSERT INTO occupancy_5m AS o (lot_id, bucket, occupied, capacity, occupancy, samples)
SELECT a.lot_id, a.bucket, a.occupied, l.capacity, a.occupied / l.capacity, a.samples
FROM (
    SELECT lot_id, bucket,
           weighted / extract(epoch FROM least(bucket + interval '5 minutes', %(until)s)
                                         - bucket)::float8 AS occupied,
           samples
    FROM (
        SELECT lot_id, date_bin('5 minutes', t, %(origin)s::timestamptz) AS bucket,
               sum(occupied * extract(epoch FROM t_next - t)::float8) AS weighted,
               count(*) FILTER (WHERE sample)::integer AS samples
        FROM _occ_level GROUP BY 1, 2
    ) sums
) a JOIN lots l USING (lot_id)
ON CONFLICT (lot_id, bucket) DO UPDATE SET
    occupied = EXCLUDED.occupied, capacity = EXCLUDED.capacity,
    occupancy = EXCLUDED.occupancy, samples = EXCLUDED.samples
WHERE (o.occupied, o.capacity, o.samples)
    IS DISTINCT FROM (EXCLUDED.occupied, EXCLUDED.capacity, EXCLUDED.samples)
"""

# A coarser tier averages the finer one's buckets of each recomputed lot.
UPSERT_COARSE = """
INSERT INTO {target} AS o (lot_id, bucket, occupied, capacity, occupancy, samples)
SELECT f.lot_id, date_bin(%(width)s::interval, f.bucket, %(origin)s::timestamptz) AS b,
       avg(f.occupied), (array_agg(f.capacity ORDER BY f.bucket DESC))[1], avg(f.occupancy),
       sum(f.samples)::integer
FROM {source} f
JOIN _occ_scope sc ON sc.lot_id = f.lot_id
 AND f.bucket >= date_bin(%(width)s::interval, sc.start_at, %(origin)s::timestamptz)
GROUP BY f.lot_id, b
ON CONFLICT (lot_id, bucket) DO UPDATE SET
    occupied = EXCLUDED.occupied, capacity = EXCLUDED.capacity,
    occupancy = EXCLUDED.occupancy, samples = EXCLUDED.samples
WHERE (o.occupied, o.capacity, o.samples)
    IS DISTINCT FROM (EXCLUDED.occupied, EXCLUDED.capacity, EXCLUDED.samples)
"""

# The level after the last step is the lot's occupancy now.
NOW = """
INSERT INTO occupancy_now AS o (lot_id, occupied, observed_at)
SELECT last.lot_id, last.occupied, seen.observed_at
FROM (SELECT DISTINCT ON (lot_id) lot_id, occupied FROM _occ_level
      ORDER BY lot_id, step DESC) last
JOIN (SELECT lot_id, max(seen_at) AS observed_at FROM _occ_level GROUP BY lot_id) seen
  USING (lot_id)
WHERE seen.observed_at IS NOT NULL
ON CONFLICT (lot_id) DO UPDATE SET
    occupied = EXCLUDED.occupied, observed_at = greatest(o.observed_at, EXCLUDED.observed_at)
"""


def refresh_occupancy(
    conn: psycopg.Connection, carry: datetime, until: datetime, since: datetime | None
) -> int:
    """Recompute occupancy for touched and carried-forward lots; return how many lots."""
    params = {"origin": ORIGIN, "carry": carry, "until": until, "since": since}
    with conn.cursor() as cur:
        cur.execute(SCOPE, params)
        lots = cur.rowcount
        if lots <= 0:
            return 0
        cur.execute(LEVEL, params)
        cur.execute(UPSERT_5M, params)
        for target, source, width in (
            ("occupancy_1h", "occupancy_5m", "1 hour"),
            ("occupancy_1d", "occupancy_1h", "1 day"),
        ):
            query = sql.SQL(UPSERT_COARSE).format(
                target=sql.Identifier(target), source=sql.Identifier(source)
            )
            cur.execute(query, {"width": width, "origin": ORIGIN})
        cur.execute(NOW)
    return lots
