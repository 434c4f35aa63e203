"""A lot with a gate counter is counted by it: its spot sensors no longer add to the count.

Before, the rollups summed a lot's counter and its spot sensors, counting each car twice. The
spot sensors of such a lot now only give its categories and a check against the counter (the
feeds, the dashboard); the feeds count it the same way.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

SOURCES = """
CREATE OR REPLACE VIEW occupancy_sources AS
SELECT src.device_id, src.kind, src.sub_id,
       CASE WHEN src.kind = 'occupied' AND EXISTS (
                SELECT 1 FROM devices c
                WHERE c.kind = 'counter' AND c.active AND c.lot_id = src.lot_id)
            THEN NULL ELSE src.lot_id END AS lot_id
FROM (
    SELECT o.device_id, o.kind, o.sub_id,
           CASE WHEN o.kind = 'occupied' THEN coalesce(s.lot_id, d.lot_id) ELSE d.lot_id END
               AS lot_id
    FROM occupancy_series o
    JOIN devices d ON d.device_id = o.device_id
    LEFT JOIN spots s ON o.kind = 'occupied' AND s.device_id = o.device_id
        AND s.sensor = o.sub_id
) src
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Redefine occupancy_sources: spot sensors of a counted lot count for no lot total."""
    del caps, settings  # the same view on both backends
    conn.execute(SOURCES)
