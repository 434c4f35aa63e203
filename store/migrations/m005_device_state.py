"""Ingest state: the latest health and activity of each device, kept by ingest per batch."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

DEVICE_STATE = """
CREATE TABLE device_state (
    device_id text PRIMARY KEY,
    site_id text NOT NULL,
    last_seen_at timestamptz NOT NULL,
    online boolean NOT NULL DEFAULT true,
    -- when `online` was last decided: an `online` reading's time, or a data message's receipt
    online_at timestamptz,
    status jsonb NOT NULL DEFAULT '{}',
    status_at timestamptz,
    readings_total bigint NOT NULL DEFAULT 0,
    rejected_total bigint NOT NULL DEFAULT 0
);
CREATE INDEX rejected_messages_reason ON rejected_messages (reason_code, received_at);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create device_state and an index to count rejections by reason."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(DEVICE_STATE)
