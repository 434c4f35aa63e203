"""Rejected messages remember when they were replayed (`streetsense ingest --replay-rejected`)."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Add rejected_messages.replayed_at."""
    del caps, settings  # a plain table on both backends
    conn.execute("ALTER TABLE rejected_messages ADD COLUMN replayed_at timestamptz")
