"""Synthetic rollups at city scale for bench/dashboard_pages.py, generated inside PostgreSQL.

A year of 5-minute readings for 7,000 series is far more than a benchmark box can ingest, so
the tiers the pages read are written directly: a daily curve per lot or segment with noise.
Only for benchmark databases; never run against a live deployment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from store.dashboard_reads import TIER_STEP, rollup

# Each lot or segment gets a phase from its id, so curves differ without a table of parameters.
_OCCUPANCY = """
INSERT INTO {table} (lot_id, bucket, occupied, capacity, occupancy, samples)
SELECT l.lot_id, b, x.share * l.capacity, l.capacity, x.share, 12
FROM lots l,
LATERAL generate_series(%(start)s::timestamptz, %(last)s::timestamptz, %(step)s::interval) b,
LATERAL (SELECT least(1.0, greatest(0.0,
    0.5 - 0.4 * cos(2 * pi() * (extract(hour FROM b) - 2 + abs(hashtext(l.lot_id)) %% 5) / 24)
    + 0.1 * (random() - 0.5))) AS share) x
"""
_FLOW = """
INSERT INTO {table} (segment_id, bucket, vehicle_count, mean_speed, detector_occupancy,
                     samples, speed_weight, detector_samples)
SELECT s.segment_id, b, x.load * s.capacity_vph * %(hours)s,
       s.speed_limit_kmh * (1.05 - 0.6 * x.load * x.load), 60 * x.load, 36,
       x.load * s.capacity_vph * %(hours)s, 12
FROM segments s,
LATERAL generate_series(%(start)s::timestamptz, %(last)s::timestamptz, %(step)s::interval) b,
LATERAL (SELECT least(1.0, greatest(0.02,
    0.45 - 0.4 * cos(2 * pi() * (extract(hour FROM b) - 3 + abs(hashtext(s.segment_id)) %% 4) / 12)
    + 0.1 * (random() - 0.5))) AS load) x
"""


def fill_rollup(
    conn: psycopg.Connection, stream: str, tier: str, start: datetime, end: datetime
) -> int:
    """Write synthetic buckets of one rollup in [start, end) for every lot or segment."""
    step = TIER_STEP[tier]
    template = _OCCUPANCY if stream == "occupancy" else _FLOW
    query = sql.SQL(template).format(table=rollup(stream, tier))
    params = {"start": start, "last": end - step, "step": step, "hours": step / timedelta(hours=1)}
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.rowcount


def fill_lot_now(conn: psycopg.Connection) -> int:
    """Set each lot's current state from its latest 5-minute bucket."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO occupancy_now (lot_id, occupied, observed_at) "
            "SELECT DISTINCT ON (lot_id) lot_id, occupied, bucket FROM occupancy_5m "
            "ORDER BY lot_id, bucket DESC "
            "ON CONFLICT (lot_id) DO UPDATE SET occupied = EXCLUDED.occupied, "
            "observed_at = EXCLUDED.observed_at"
        )
        return cur.rowcount


def cluster_by_time(conn: psycopg.Connection, stream: str, tier: str) -> None:
    """Rewrite a rollup table in bucket order, as incremental refreshes lay it out over time.

    The generator writes lot by lot; without this a recent range touches pages all over the
    table and the planner rightly prefers a full scan, which a live deployment never sees.
    """
    table = f"{stream}_{tier}"
    conn.execute(
        sql.SQL("CLUSTER {} USING {}").format(
            sql.Identifier(table), sql.Identifier(f"{table}_bucket")
        )
    )


def analyse(conn: psycopg.Connection) -> None:
    """Refresh planner statistics after a bulk load."""
    conn.execute("ANALYZE")


def rows(conn: psycopg.Connection, stream: str, tier: str) -> int:
    """Return how many buckets a rollup holds."""
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(rollup(stream, tier))).fetchone()
    return int(row[0]) if row else 0
