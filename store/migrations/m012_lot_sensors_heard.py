"""Feeds: when each lot's sensors were last heard from, without exposing device health.

A quiet lot's sensors send no occupancy change for a long time, yet their heartbeats (status
messages, spot re-sends) say they are alive. The open feeds may not read device_state (device
health is private), so this view gives them one aggregate per lot: no device ids, no status.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

LOT_SENSORS_HEARD = """
CREATE VIEW lot_sensors_heard AS
SELECT sensors.lot_id, max(s.last_seen_at) AS heard_at
FROM (
    SELECT device_id, lot_id FROM spots
    UNION
    SELECT device_id, lot_id FROM devices WHERE lot_id IS NOT NULL
) sensors
JOIN device_state s USING (device_id)
WHERE s.online
GROUP BY sensors.lot_id
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the lot_sensors_heard view."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(LOT_SENSORS_HEARD)
