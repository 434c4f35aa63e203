"""Views for analysts who query the database directly (documented in docs/sql-views.md)."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

VIEWS = """
-- Every reading with where it was measured: the lot (and spot) or the road segment.
CREATE OR REPLACE VIEW readings_located AS
SELECT r.observed_at, r.received_at, r.device_id, r.kind, r.sub_id, r.value, r.seq,
       r.clock_suspect, d.site_id, d.kind AS device_kind,
       coalesce(s.lot_id, d.lot_id) AS lot_id, s.spot_id, d.segment_id
FROM readings r
JOIN devices d ON d.device_id = r.device_id
LEFT JOIN spots s ON s.device_id = r.device_id AND s.sensor = r.sub_id;

-- Rejected messages per UTC day and reason, for data-quality reports.
CREATE OR REPLACE VIEW rejected_daily AS
SELECT date_trunc('day', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
       reason_code, count(*) AS messages, count(DISTINCT device_id) AS devices,
       sum(payload_bytes) AS payload_bytes
FROM rejected_messages
GROUP BY 1, 2;
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the analysts' views (the same on both backends)."""
    conn.execute(VIEWS)
