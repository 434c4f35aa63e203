"""How many spot sensors watch each space category of a lot, without naming any of them.

A category's free spaces are known only when sensors watch all of its spaces: two sensors on a
garage's six disabled spaces say how many of those two are free, not how many of the six. The
open feeds may not read `spots` (issue 14), so they read these counts instead.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

LOT_CATEGORY_SENSORS = """
CREATE VIEW lot_category_sensors AS
SELECT sp.lot_id, sp.category, count(*)::integer AS spots
FROM spots sp
JOIN devices d ON d.device_id = sp.device_id AND d.active
JOIN lots l ON l.lot_id = sp.lot_id AND l.active
GROUP BY sp.lot_id, sp.category
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the lot_category_sensors view."""
    del caps, settings  # the same on both backends
    conn.execute(LOT_CATEGORY_SENSORS)
