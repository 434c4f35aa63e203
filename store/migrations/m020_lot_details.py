"""Parking details: opening hours, capacity per space category, static facts, spot categories,
and operators' status overrides with their audit log.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

CATEGORIES = (
    "'general', 'disabled', 'ev_charging', 'women', 'family', 'car_sharing', 'motorcycle', "
    "'bus', 'truck'"
)

LOTS = """
ALTER TABLE lots
    ADD COLUMN opening_hours text NOT NULL DEFAULT '',  -- OpenStreetMap syntax; '' = 24/7
    ADD COLUMN spaces jsonb NOT NULL DEFAULT '{}',      -- {"disabled": 4, ...}; general = rest
    ADD COLUMN facts jsonb NOT NULL DEFAULT '{}';       -- operator, address, entrances, fee...
ALTER TABLE spots
    ADD COLUMN category text NOT NULL DEFAULT 'general' CHECK (category IN (%s));
"""

OVERRIDES = """
-- The operator's current decision per lot (open or closed whatever the hours say).
CREATE TABLE lot_status_overrides (
    lot_id text PRIMARY KEY REFERENCES lots,
    status text NOT NULL CHECK (status IN ('open', 'closed')),
    reason text NOT NULL,
    set_by text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now(),
    until timestamptz,
    CHECK (until IS NULL OR until > set_at)
);
-- Every set and clear, append-only: who, when, from where, why.
CREATE TABLE lot_status_audit (
    id bigserial PRIMARY KEY,
    lot_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('set', 'clear')),
    status text,
    reason text NOT NULL,
    actor text NOT NULL,
    via text NOT NULL CHECK (via IN ('cli', 'dashboard')),
    at timestamptz NOT NULL DEFAULT now(),
    until timestamptz
);
CREATE INDEX lot_status_audit_lot ON lot_status_audit (lot_id, at);
-- What the open feeds may read of overrides: never who set them.
CREATE VIEW lot_status_public AS
SELECT lot_id, status, reason, set_at, until FROM lot_status_overrides;
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Add the lot details, spot categories and the override tables."""
    del caps, settings  # the same on TimescaleDB and plain PostgreSQL
    conn.execute(LOTS.replace("%s", CATEGORIES))
    conn.execute(OVERRIDES)
