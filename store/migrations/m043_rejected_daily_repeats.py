"""rejected_daily counts the refusals a summary row stands for (rejected_messages.repeats)."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

REJECTED_DAILY = """
CREATE OR REPLACE VIEW rejected_daily AS
SELECT date_trunc('day', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
       reason_code, sum(repeats) AS messages, count(DISTINCT device_id) AS devices,
       sum(payload_bytes) AS payload_bytes
FROM rejected_messages
GROUP BY 1, 2
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Redefine rejected_daily with sum(repeats)."""
    del caps, settings  # a plain view on both backends
    conn.execute(REJECTED_DAILY)
