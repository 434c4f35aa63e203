"""Rollup invalidations: devices whose readings committed too late for the receive-time scan.

Ingest adds a row in the transaction of a batch committed long after its messages arrived
(store.rollup_invalidations); the next refresh deletes the rows and recomputes those devices'
series from `observed_from`. A plain table on both backends.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

ROLLUP_INVALIDATIONS = """
CREATE TABLE rollup_invalidations (
    id bigserial PRIMARY KEY,
    device_ids text[] NOT NULL,
    observed_from timestamptz NOT NULL,  -- the earliest observed_at of the late batch
    noted_at timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create rollup_invalidations."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(ROLLUP_INVALIDATIONS)
