"""Refused data stays bounded: throttled refusals summarised in one row, both tables pruned.

`rejected_messages.repeats` says how many refusals a row stands for: 1 for a message or record
kept whole, N for the summary of N refusals of one source and reason that ingest counted
without keeping (ingest.refusals_kept_per_minute). Indexes serve the quarantine bounds (distinct
unknown ids per site) and the retention prune of both tables.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

REFUSAL_BOUNDS = """
ALTER TABLE rejected_messages ADD COLUMN repeats integer NOT NULL DEFAULT 1 CHECK (repeats >= 1);
CREATE INDEX quarantine_site_device ON quarantine (site_id, device_id) WHERE released_at IS NULL;
CREATE INDEX quarantine_received ON quarantine (received_at);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Add rejected_messages.repeats and the quarantine indexes."""
    del caps, settings  # plain tables on both backends
    conn.execute(REFUSAL_BOUNDS)
