"""Plain PostgreSQL: readings' observed-time BRIN summarizes each filled range as it fills.

Migration 001 made the index without `autosummarize`, so ranges written since the last vacuum
stayed unsummarized and every scan by observed time read all of them: the incident rule's read
of the newest minutes took 0.41-0.66 s right after a write and 0.13-0.34 s after a VACUUM
(bench/alerts_scale.py). With it, autovacuum summarizes a range soon after the next one
starts. In the alerts range (051-059): the core range is full, and the read it is for is the
alerts'. TimescaleDB made its index this way already (migration 009).
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Turn on autosummarize for readings_observed_brin (plain PostgreSQL)."""
    del settings
    if caps.timescale:
        return
    # A reloption change: takes SHARE UPDATE EXCLUSIVE, so writes go on while it runs.
    conn.execute("ALTER INDEX readings_observed_brin SET (autosummarize = on)")
