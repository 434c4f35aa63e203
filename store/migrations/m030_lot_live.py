"""`lot_live`: each lot's occupied spaces from the newest reading of each of its sources, now.

`lot_now` is as fresh as the last rollup refresh (the analytics job, every few minutes); the
open feeds count from the newest readings as they are committed. The dashboard's "now" reads
this view, so planners and apps see the same numbers: the same sources as the feeds' live
engine (feeds/live.py), the same rule (a lot with a gate counter is counted by it, else by its
spot sensors), checked by tests/dashboard/test_live_now.py against the running feeds API.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

LOT_LIVE = """
CREATE VIEW lot_live AS
WITH candidates AS (
    SELECT device_id, 'occupied' AS kind, sensor AS sub_id FROM spots
    UNION
    SELECT device_id, k.kind, '' FROM devices
    CROSS JOIN (VALUES ('occupied'), ('occupied_spaces')) k (kind) WHERE lot_id IS NOT NULL
    UNION
    SELECT device_id, kind, sub_id FROM occupancy_series
), sources AS (
    -- a spot sensor counts for its spot's lot, anything else of a device for the device's lot
    SELECT c.device_id, c.kind, c.sub_id,
           coalesce(CASE WHEN c.kind = 'occupied' THEN spot.lot_id END, own.lot_id) AS lot_id
    FROM candidates c
    LEFT JOIN (
        SELECT s.device_id, s.sensor, s.lot_id FROM spots s
        JOIN devices d USING (device_id) JOIN lots l ON l.lot_id = s.lot_id
        WHERE d.active AND l.active
    ) spot ON spot.device_id = c.device_id AND spot.sensor = c.sub_id
    LEFT JOIN (
        SELECT d.device_id, d.lot_id FROM devices d JOIN lots l USING (lot_id)
        WHERE d.active AND l.active
    ) own ON own.device_id = c.device_id
), latest AS (
    SELECT src.lot_id, src.kind, r.value, r.observed_at
    FROM sources src
    CROSS JOIN LATERAL (
        SELECT value, observed_at FROM readings
        WHERE device_id = src.device_id AND kind = src.kind AND sub_id = src.sub_id
        ORDER BY observed_at DESC LIMIT 1
    ) r
    WHERE src.lot_id IS NOT NULL
), per_lot AS (
    SELECT lot_id,
           sum(value) FILTER (WHERE kind = 'occupied_spaces') AS counter,
           sum(value) FILTER (WHERE kind = 'occupied') AS sensed,
           count(*) FILTER (WHERE kind = 'occupied') AS sensors,
           max(observed_at) AS observed_at
    FROM latest GROUP BY lot_id
)
SELECT p.lot_id, coalesce(p.counter, p.sensed, 0) AS occupied, l.capacity,
       coalesce(p.counter, p.sensed, 0) / l.capacity AS occupancy, p.observed_at,
       p.counter, p.sensed, p.sensors
FROM per_lot p JOIN lots l USING (lot_id)
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the lot_live view."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(LOT_LIVE)
