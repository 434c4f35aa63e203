"""The open feeds read lot aggregates only: live counts per lot, and which lots changed lately.

Until now the feeds' live engine read raw parking readings and the spot mapping, and added them
up itself; the feeds role could therefore select `readings`, `devices` and `spots`, and one join
rebuilt any spot's history (issue 14). Here the database adds them up: `lot_parking_live` gives
each lot's counts from the newest reading of each of its sources, and
`feeds_parking_transactions` names the lots the transactions committed since a moment touched,
without a value or a device. Both run with their owner's privileges; the feeds role gets
nothing else of the raw data (store.roles.FEEDS_READS).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from store.db import Capabilities
from streetsense.config import DatabaseSettings

# Every parking source of an active lot, with the lot and space category it counts for: spot
# sensors their spot's (when device and lot are active), anything else its device's. This is
# the rule feeds.live used in memory; lot_id is a plain column of each branch, so a filter on
# it reaches both.
LOT_PARKING_LIVE = """
CREATE VIEW lot_parking_live AS
WITH sources AS (
    SELECT sp.lot_id, sp.device_id, 'occupied'::text AS kind, sp.sensor AS sub_id, sp.category
    FROM spots sp
    JOIN devices d ON d.device_id = sp.device_id AND d.active
    JOIN lots l ON l.lot_id = sp.lot_id AND l.active
    UNION ALL
    SELECT d.lot_id, d.device_id, k.kind, k.sub_id, 'general'
    FROM devices d
    JOIN lots l ON l.lot_id = d.lot_id AND l.active
    CROSS JOIN LATERAL (
        SELECT own.kind, ''::text AS sub_id
        FROM (VALUES ('occupied'), ('occupied_spaces')) own (kind)
        UNION
        SELECT o.kind, o.sub_id FROM occupancy_series o WHERE o.device_id = d.device_id
    ) k
    WHERE d.active AND NOT EXISTS (
        SELECT 1 FROM spots sp JOIN lots sl ON sl.lot_id = sp.lot_id AND sl.active
        WHERE k.kind = 'occupied' AND sp.device_id = d.device_id AND sp.sensor = k.sub_id
    )
), per_category AS (
    SELECT s.lot_id, s.kind, s.category, sum(r.value) AS occupied, count(*) AS sources,
           max(r.observed_at) AS observed_at, max(r.received_at) AS received_at
    FROM sources s
    CROSS JOIN LATERAL (
        SELECT value, observed_at, received_at FROM readings
        WHERE device_id = s.device_id AND kind = s.kind AND sub_id = s.sub_id
        ORDER BY observed_at DESC LIMIT 1
    ) r
    GROUP BY s.lot_id, s.kind, s.category
)
SELECT lot_id,
       sum(occupied) FILTER (WHERE kind = 'occupied_spaces') AS counter,
       sum(occupied) FILTER (WHERE kind = 'occupied') AS sensed,
       coalesce(sum(sources) FILTER (WHERE kind = 'occupied'), 0)::integer AS sensors,
       coalesce(jsonb_object_agg(category, occupied) FILTER (WHERE kind = 'occupied'), '{}')
           AS categories,
       max(observed_at) AS observed_at,
       max(received_at) AS received_at
FROM per_category
GROUP BY lot_id
"""

# Dynamic SQL: planned with the values of each call, so the observed-time window reaches the
# time index (a generic plan could not know how narrow it is). The window is capped: the
# function is for "what changed lately", not a way to scan history. No JIT: compiling this
# small query took seconds on a 2,000-lot city, running it milliseconds.
FEEDS_PARKING_TRANSACTIONS = """
CREATE FUNCTION feeds_parking_transactions(
    since timestamptz, window_s double precision, seen text[]
) RETURNS TABLE (transaction_id text, received_at timestamptz, lot_ids text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = {schema}, pg_temp
SET jit = off
AS $function$
BEGIN
    RETURN QUERY EXECUTE $query$
        WITH recent AS (
            SELECT r.xmin::text AS tx, r.device_id, r.kind, r.sub_id,
                   max(r.received_at) AS received_at
            FROM readings r
            WHERE r.kind IN ('occupied', 'occupied_spaces')
              AND r.observed_at > now() - make_interval(secs => least($2, 3600))
              AND ($1 IS NULL OR r.received_at > $1)
              AND NOT (r.xmin::text = ANY(coalesce($3, '{{}}')))
            GROUP BY 1, 2, 3, 4
        ), mapped AS (
            SELECT rc.tx, rc.received_at, coalesce(sl.lot_id, dl.lot_id) AS lot_id
            FROM recent rc
            LEFT JOIN (spots sp
                       JOIN devices sd ON sd.device_id = sp.device_id AND sd.active
                       JOIN lots sl ON sl.lot_id = sp.lot_id AND sl.active)
                ON rc.kind = 'occupied' AND sp.device_id = rc.device_id AND sp.sensor = rc.sub_id
            LEFT JOIN (devices dd JOIN lots dl ON dl.lot_id = dd.lot_id AND dl.active)
                ON dd.device_id = rc.device_id AND dd.active
        )
        SELECT tx, max(received_at),
               coalesce(array_agg(DISTINCT lot_id) FILTER (WHERE lot_id IS NOT NULL), '{{}}')
        FROM mapped
        GROUP BY tx
    $query$ USING since, window_s, seen;
END
$function$
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the feeds' live aggregate view and their recent-transactions function."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    # Each poll reads the lots that changed: their spots and devices by lot, not a full scan.
    conn.execute("CREATE INDEX IF NOT EXISTS spots_lot ON spots (lot_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS devices_lot ON devices (lot_id)")
    conn.execute(LOT_PARKING_LIVE)
    schema = conn.execute("SELECT current_schema()").fetchone()
    assert schema is not None
    # The function runs with its owner's rights: its search path is pinned (temporary
    # objects last, so none can stand in for a table), and only the feeds role may call it.
    conn.execute(sql.SQL(FEEDS_PARKING_TRANSACTIONS).format(schema=sql.Identifier(schema[0])))
    conn.execute(
        "REVOKE ALL ON FUNCTION feeds_parking_transactions(timestamptz, double precision, text[])"
        " FROM PUBLIC"
    )
