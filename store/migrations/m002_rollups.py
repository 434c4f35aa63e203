"""Rollups planners query: lot occupancy and segment flow at 5 min, 1 h and 1 day.

Occupancy is an incrementally refreshed table on both backends: a spot's state persists until
its next event, so each bucket needs the last event before it (window functions over a step
function), which TimescaleDB's continuous aggregates forbid; there the occupancy tables are
hypertables that compress once late data can no longer change them. Flow is a plain sum per
interval: on TimescaleDB it is a chain of continuous aggregates per lane (5 min from readings,
1 h from 5 min, 1 day from 1 h) with segment views on top; on plain PostgreSQL the same numbers
live in tables that `store.rollups.refresh` maintains.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from store.db import Capabilities
from streetsense.config import DatabaseSettings, IngestSettings

NON_TRANSACTIONAL = True  # continuous aggregates cannot be created inside a transaction

COMMON = """
-- Ingest never calls the rollups: refresh finds new readings by their receive time, which
-- only grows, so a BRIN index answers `received_at > watermark` from a few pages
-- (autosummarize: each filled range is summarized without waiting for a vacuum).
CREATE INDEX IF NOT EXISTS readings_received_brin ON readings USING brin (received_at)
    WITH (autosummarize = on);

CREATE TABLE IF NOT EXISTS rollup_state (
    name text PRIMARY KEY,
    watermark timestamptz,          -- highest readings.received_at already folded in
    refreshed_until timestamptz,    -- the `until` of the last refresh (carry-forward start)
    flow_pending_from timestamptz,  -- TimescaleDB: aggregates not yet refreshed from here
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

-- Every (device, kind, sub_id) that ever reported a parking kind; mapped to its lot at
-- refresh time, so a registry change re-assigns it without rewriting anything.
CREATE TABLE IF NOT EXISTS occupancy_series (
    device_id text NOT NULL,
    kind text NOT NULL,
    sub_id text NOT NULL,
    PRIMARY KEY (device_id, kind, sub_id)
);

CREATE OR REPLACE VIEW occupancy_sources AS
SELECT o.device_id, o.kind, o.sub_id,
       CASE WHEN o.kind = 'occupied' THEN coalesce(s.lot_id, d.lot_id) ELSE d.lot_id END
           AS lot_id
FROM occupancy_series o
JOIN devices d ON d.device_id = o.device_id
LEFT JOIN spots s ON o.kind = 'occupied' AND s.device_id = o.device_id AND s.sensor = o.sub_id;

CREATE TABLE IF NOT EXISTS occupancy_now (
    lot_id text PRIMARY KEY,
    occupied double precision NOT NULL,
    observed_at timestamptz NOT NULL
);

CREATE OR REPLACE VIEW lot_now AS
SELECT n.lot_id, n.occupied, l.capacity, n.occupied / l.capacity AS occupancy, n.observed_at
FROM occupancy_now n JOIN lots l USING (lot_id);
"""

OCCUPANCY_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    lot_id text NOT NULL,
    bucket timestamptz NOT NULL,
    occupied double precision NOT NULL,
    capacity integer NOT NULL,
    occupancy double precision NOT NULL,
    samples integer NOT NULL,
    PRIMARY KEY (lot_id, bucket)
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (bucket);
"""

# speed_weight and detector_samples are what 1 h and 1 day need to weight the finer tier.
FLOW_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    segment_id text NOT NULL,
    bucket timestamptz NOT NULL,
    vehicle_count double precision,
    mean_speed double precision,
    detector_occupancy double precision,
    samples integer NOT NULL,
    speed_weight double precision,
    detector_samples integer NOT NULL,
    PRIMARY KEY (segment_id, bucket)
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (bucket);
"""

LANES_5M = """
CREATE MATERIALIZED VIEW IF NOT EXISTS flow_lanes_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket('5 minutes', observed_at) AS bucket, device_id, sub_id,
       sum(value) FILTER (WHERE kind = 'vehicle_count') AS vehicle_count,
       avg(value) FILTER (WHERE kind = 'mean_speed') AS speed,
       sum(value) FILTER (WHERE kind = 'detector_occupancy') AS detector_sum,
       count(*) FILTER (WHERE kind = 'detector_occupancy') AS detector_samples,
       count(*) AS samples
FROM readings
WHERE kind IN ('vehicle_count', 'mean_speed', 'detector_occupancy')
GROUP BY 1, device_id, sub_id
WITH NO DATA
"""

# Coarser lane tiers keep sums, so the segment views can weight speeds by vehicle count.
LANES_COARSE = """
CREATE MATERIALIZED VIEW IF NOT EXISTS {view}
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket({width}, bucket) AS bucket, device_id, sub_id,
       sum(vehicle_count) AS vehicle_count,
       {speed_sum} AS speed_sum,
       {speed_weight} AS speed_weight,
       sum(detector_sum) AS detector_sum,
       sum(detector_samples) AS detector_samples,
       sum(samples) AS samples
FROM {source}
GROUP BY 1, device_id, sub_id
WITH NO DATA
"""

# A segment view's select over a lane tier; {period} narrows the buckets (migration 052 reads
# older ones from the aggregates it set aside), "true" here.
SEGMENT_SELECT_5M = """
SELECT d.segment_id, f.bucket,
       sum(f.vehicle_count) AS vehicle_count,
       sum(f.speed * f.vehicle_count)
           / nullif(sum(f.vehicle_count) FILTER (WHERE f.speed IS NOT NULL), 0) AS mean_speed,
       sum(f.detector_sum) / nullif(sum(f.detector_samples), 0) AS detector_occupancy,
       sum(f.samples)::integer AS samples,
       sum(f.vehicle_count) FILTER (WHERE f.speed IS NOT NULL) AS speed_weight,
       sum(f.detector_samples)::integer AS detector_samples
FROM {source} f JOIN devices d ON d.device_id = f.device_id
WHERE d.segment_id IS NOT NULL AND {period}
GROUP BY d.segment_id, f.bucket
"""

SEGMENT_SELECT_COARSE = """
SELECT d.segment_id, f.bucket,
       sum(f.vehicle_count) AS vehicle_count,
       sum(f.speed_sum) / nullif(sum(f.speed_weight), 0) AS mean_speed,
       sum(f.detector_sum) / nullif(sum(f.detector_samples), 0) AS detector_occupancy,
       sum(f.samples)::integer AS samples,
       sum(f.speed_weight) AS speed_weight,
       sum(f.detector_samples)::integer AS detector_samples
FROM {source} f JOIN devices d ON d.device_id = f.device_id
WHERE d.segment_id IS NOT NULL AND {period}
GROUP BY d.segment_id, f.bucket
"""

# The latest complete 5 min bucket of each segment that reported in the last day.
SEGMENT_NOW = """
CREATE OR REPLACE VIEW segment_now AS
SELECT DISTINCT ON (segment_id) segment_id, bucket, vehicle_count, mean_speed,
       detector_occupancy
FROM flow_5m
WHERE bucket >= now() - interval '1 day' AND bucket <= now() - interval '5 minutes'
ORDER BY segment_id, bucket DESC
"""

TIERS = (("5m", "5 minutes"), ("1h", "1 hour"), ("1d", "1 day"))
# How a coarse lane tier sums speeds: from the 5 min tier's mean speed, or the 1 h tier's sums.
SPEED_SUMS = {
    "5m": ("sum(speed * vehicle_count)", "sum(vehicle_count) FILTER (WHERE speed IS NOT NULL)"),
    "1h": ("sum(speed_sum)", "sum(speed_weight)"),
}


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the rollup tables, views and (on TimescaleDB) continuous aggregates."""
    with conn.transaction():
        conn.execute(COMMON)
        for tier, _ in TIERS:
            conn.execute(_format(OCCUPANCY_TABLE, f"occupancy_{tier}", f"occupancy_{tier}_bucket"))
    if caps.timescale:
        _timescale_flow(conn, settings)
        _timescale_occupancy(conn, settings)
    else:
        with conn.transaction():
            for tier, _ in TIERS:
                conn.execute(_format(FLOW_TABLE, f"flow_{tier}", f"flow_{tier}_bucket"))
    conn.execute(SEGMENT_NOW)


def _format(template: str, table: str, index: str) -> sql.Composed:
    return sql.SQL(template).format(table=sql.Identifier(table), index=sql.Identifier(index))


def _timescale_flow(conn: psycopg.Connection, settings: DatabaseSettings) -> None:
    conn.execute(LANES_5M)
    conn.execute(segment_view("5m", sql.SQL(SEGMENT_SELECT_5M), "flow_lanes_5m"))
    for (tier, width), (source_tier, _) in zip(TIERS[1:], TIERS[:-1], strict=True):
        view = sql.Identifier(f"flow_lanes_{tier}")
        source = sql.Identifier(f"flow_lanes_{source_tier}")
        speed_sum, speed_weight = SPEED_SUMS[source_tier]
        conn.execute(
            sql.SQL(LANES_COARSE).format(
                view=view,
                width=sql.Literal(width),
                source=source,
                speed_sum=sql.SQL(speed_sum),
                speed_weight=sql.SQL(speed_weight),
            )
        )
        conn.execute(segment_view(tier, sql.SQL(SEGMENT_SELECT_COARSE), f"flow_lanes_{tier}"))
    _timescale_policies(conn, settings)


def segment_view(tier: str, select: sql.SQL, source: str) -> sql.Composed:
    """Return the statement that makes flow_<tier> the segment view of a lane tier."""
    return sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(
        sql.Identifier(f"flow_{tier}"),
        select.format(source=sql.Identifier(source), period=sql.SQL("true")),
    )


def _window_days() -> int:
    # The default late-data window; refresh recomputes within the configured one regardless.
    return IngestSettings().late_window_s // 86_400 + 1


def _compress_days(settings: DatabaseSettings) -> int:
    # Rollups are rewritten while late data may arrive, so they compress only after that.
    return max(settings.compress_after_days, _window_days() + 1) + 1


def _timescale_occupancy(conn: psycopg.Connection, settings: DatabaseSettings) -> None:
    """Make the occupancy tables hypertables that compress once late data can no longer come."""
    for tier, chunk in (("5m", "7 days"), ("1h", "30 days"), ("1d", "365 days")):
        table = f"occupancy_{tier}"
        conn.execute(
            "SELECT create_hypertable(%s::regclass, 'bucket', chunk_time_interval =>"
            " %s::interval, migrate_data => true, if_not_exists => true)",
            (table, chunk),
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby ="
                " 'lot_id', timescaledb.compress_orderby = 'bucket')"
            ).format(sql.Identifier(table))
        )
        conn.execute(
            "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval,"
            " if_not_exists => true)",
            (table, f"{_compress_days(settings)} days"),
        )


def _timescale_policies(conn: psycopg.Connection, settings: DatabaseSettings) -> None:
    # Late readings within the ingest window must still reach the aggregates, so the policies
    # look back one window (the default; `streetsense db refresh` covers any other setting).
    window_days = _window_days()
    for tier, width in TIERS:
        view = f"flow_lanes_{tier}"
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval,"
            " end_offset => NULL, schedule_interval => %s::interval, if_not_exists => true)",
            (view, f"{window_days + 1} days", width if tier != "1d" else "1 hour"),
        )
        conn.execute(
            sql.SQL("ALTER MATERIALIZED VIEW {} SET (timescaledb.compress = true)").format(
                sql.Identifier(view)
            )
        )
        conn.execute(
            "SELECT add_compression_policy(%s, compress_after => %s::interval,"
            " if_not_exists => true)",
            (view, f"{_compress_days(settings)} days"),
        )
