"""Readings carry a revision: a higher one replaces the stored reading (store.revisions)."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Add readings.revision, 0 for every reading stored so far (a first report)."""
    del caps, settings  # a constant default: no table rewrite, on both backends
    conn.execute("ALTER TABLE readings ADD COLUMN revision integer NOT NULL DEFAULT 0")
