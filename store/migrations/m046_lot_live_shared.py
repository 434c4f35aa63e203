"""One rule for a lot's live count: `lot_live` (the dashboard's, migration 030) now reads
`lot_parking_live` (the feeds', migration 045), which spells out once which sources count for
which lot. Planners and apps keep seeing the same numbers, from one definition.

`lot_parking_live` also takes what lot_live took and it did not: a spot row whose own lot is
inactive counts, through its sensor, for its device's lot (it waited for the rollups to list
the sensor before).
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

# The columns of migration 045, in order; the device branch now also lists the device's spots.
LOT_PARKING_LIVE = """
CREATE OR REPLACE VIEW lot_parking_live AS
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
        SELECT 'occupied', s.sensor FROM spots s WHERE s.device_id = d.device_id
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

# The columns of migration 030, in order (a lot with a gate counter is counted by it).
LOT_LIVE = """
CREATE OR REPLACE VIEW lot_live AS
SELECT p.lot_id, coalesce(p.counter, p.sensed, 0) AS occupied, l.capacity,
       coalesce(p.counter, p.sensed, 0) / l.capacity AS occupancy, p.observed_at,
       p.counter, p.sensed, p.sensors::bigint AS sensors
FROM lot_parking_live p JOIN lots l USING (lot_id)
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Redefine lot_live over lot_parking_live."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(LOT_PARKING_LIVE)
    conn.execute(LOT_LIVE)
