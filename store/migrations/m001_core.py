"""Core schema: the city registry, raw readings, rejected and quarantined messages, sequences."""

from __future__ import annotations

import psycopg
from psycopg import sql

from store.db import Capabilities
from streetsense.config import DatabaseSettings

REGISTRY = """
CREATE TABLE registry_versions (
    version text PRIMARY KEY,
    source text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    counts jsonb NOT NULL
);
CREATE TABLE sites (
    site_id text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE lots (
    lot_id text PRIMARY KEY,
    site_id text NOT NULL REFERENCES sites,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('off_street', 'on_street')),
    capacity integer NOT NULL CHECK (capacity > 0),
    lat double precision NOT NULL,
    lon double precision NOT NULL,
    area text NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE segments (
    segment_id text PRIMARY KEY,
    site_id text NOT NULL REFERENCES sites,
    name text NOT NULL,
    direction text NOT NULL DEFAULT '',
    coordinates jsonb NOT NULL,
    speed_limit_kmh double precision NOT NULL,
    capacity_vph double precision NOT NULL,
    area text NOT NULL DEFAULT '',
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE devices (
    device_id text PRIMARY KEY,
    site_id text NOT NULL,
    kind text NOT NULL,
    lot_id text REFERENCES lots,
    segment_id text REFERENCES segments,
    lat double precision,
    lon double precision,
    registered_by text NOT NULL DEFAULT 'registry'
        CHECK (registered_by IN ('registry', 'auto')),
    registered_at timestamptz NOT NULL DEFAULT now(),
    active boolean NOT NULL DEFAULT true
);
CREATE TABLE spots (
    spot_id text PRIMARY KEY,
    lot_id text NOT NULL REFERENCES lots,
    device_id text NOT NULL REFERENCES devices,
    -- '' when the device is the spot's own sensor, else the sub-id a gateway reports under
    sensor text NOT NULL DEFAULT '',
    UNIQUE (device_id, sensor)
);
"""

# One row per observation. `sub_id` is '' for a device's own readings (a NULL would defeat
# the unique key that deduplicates at-least-once deliveries).
READINGS = """
CREATE TABLE readings (
    device_id text NOT NULL,
    kind text NOT NULL,
    sub_id text NOT NULL DEFAULT '',
    observed_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    value double precision NOT NULL,
    seq bigint,
    clock_suspect boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX readings_identity ON readings (device_id, kind, sub_id, observed_at);
"""

REJECTED = """
CREATE TABLE rejected_messages (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic text NOT NULL,
    device_id text,
    reason_code text NOT NULL,
    reason text NOT NULL,
    record_index integer,
    seq bigint,
    payload bytea NOT NULL,
    payload_bytes integer NOT NULL
);
CREATE INDEX rejected_messages_received ON rejected_messages (received_at);
CREATE INDEX rejected_messages_device ON rejected_messages (device_id, received_at);

-- Whole messages from devices the registry does not know, kept to be replayed once they are.
CREATE TABLE quarantine (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL,
    topic text NOT NULL,
    site_id text NOT NULL,
    device_id text NOT NULL,
    reason text NOT NULL,
    payload bytea NOT NULL,
    released_at timestamptz
);
CREATE INDEX quarantine_device ON quarantine (device_id) WHERE released_at IS NULL;

-- End-to-end confirmation state per device (see docs/protocol.md).
CREATE TABLE device_sequences (
    device_id text PRIMARY KEY,
    site_id text NOT NULL,
    contiguous_seq bigint NOT NULL,
    max_seq bigint NOT NULL,
    pending bigint[] NOT NULL DEFAULT '{}',
    lost bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the core tables; raw readings become a hypertable on TimescaleDB."""
    for block in (REGISTRY, READINGS, REJECTED):
        conn.execute(block)
    if caps.timescale:
        _timescale(conn, settings)
    else:
        # Readings arrive roughly in time order, so a BRIN index serves range scans at a
        # fraction of a B-tree's size.
        conn.execute("CREATE INDEX readings_observed_brin ON readings USING brin (observed_at)")


def _timescale(conn: psycopg.Connection, settings: DatabaseSettings) -> None:
    conn.execute(
        "SELECT create_hypertable('readings', 'observed_at', "
        "chunk_time_interval => interval '1 day', migrate_data => true)"
    )
    conn.execute(
        "ALTER TABLE readings SET (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'device_id', "
        "timescaledb.compress_orderby = 'observed_at')"
    )
    if settings.compress_after_days > 0:
        conn.execute(
            sql.SQL("SELECT add_compression_policy('readings', {}::interval)").format(
                sql.Literal(f"{settings.compress_after_days} days")
            )
        )
    if settings.retention_days > 0:
        conn.execute(
            sql.SQL("SELECT add_retention_policy('readings', {}::interval)").format(
                sql.Literal(f"{settings.retention_days} days")
            )
        )
