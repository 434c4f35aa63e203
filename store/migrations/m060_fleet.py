"""The fleet: enrolment batches, the installers' allow-list, enrolments, enrolled devices'
credentials, the audit log and the actions queued from the dashboard (docs/edge.md)."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from store.roles import create_roles
from streetsense.config import DatabaseSettings

FLEET = """
-- Devices may now be registered by fleet enrolment, besides the registry file and ingest.
ALTER TABLE devices DROP CONSTRAINT devices_registered_by_check;
ALTER TABLE devices ADD CONSTRAINT devices_registered_by_check
    CHECK (registered_by IN ('registry', 'auto', 'fleet'));

-- A batch of device images sharing one bootstrap secret (a client in the broker that may do
-- nothing but enrol). The secret itself lives in the broker only.
CREATE TABLE fleet_batches (
    batch_id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    expires_at timestamptz NOT NULL,
    closed_at timestamptz,
    note text NOT NULL DEFAULT ''
);

-- What an installer said goes where: serial -> device id and its place. A serial enrols
-- without an operator only from here.
CREATE TABLE fleet_allowlist (
    serial text PRIMARY KEY,
    batch_id text REFERENCES fleet_batches,          -- NULL: any batch
    device_id text NOT NULL UNIQUE,
    site_id text NOT NULL REFERENCES sites,
    kind text NOT NULL CHECK (kind IN ('parking', 'counter', 'traffic', 'light')),
    lot_id text REFERENCES lots,
    segment_id text REFERENCES segments,
    spots jsonb NOT NULL DEFAULT '[]',                -- [{"spot", "sensor", "category"}]
    lat double precision,
    lon double precision,
    added_at timestamptz NOT NULL,
    added_by text NOT NULL,
    source text NOT NULL
);

-- Every serial that asked to enrol. The first request binds the serial to the password
-- fingerprint it carried: a second device claiming the serial (a copy, a replay) gets nothing
-- and is counted here as a conflict for the operator.
CREATE TABLE fleet_enrolments (
    serial text PRIMARY KEY,
    batch_id text NOT NULL REFERENCES fleet_batches,
    state text NOT NULL
        CHECK (state IN ('pending', 'approved', 'enrolled', 'refused', 'revoked')),
    password_sha256 text NOT NULL,
    hardware jsonb NOT NULL DEFAULT '{}',
    agent_version text NOT NULL DEFAULT '',
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    requests integer NOT NULL DEFAULT 1,
    conflicts integer NOT NULL DEFAULT 0,
    last_conflict_at timestamptz,
    device_id text,
    decided_at timestamptz,
    decided_by text,
    reason text NOT NULL DEFAULT ''
);
CREATE INDEX fleet_enrolments_state ON fleet_enrolments (state, last_at);

-- An enrolled device: its broker client and the life of its password.
CREATE TABLE fleet_devices (
    device_id text PRIMARY KEY REFERENCES devices,
    serial text NOT NULL UNIQUE,
    batch_id text NOT NULL REFERENCES fleet_batches,
    username text NOT NULL UNIQUE,
    enrolled_at timestamptz NOT NULL,
    generation integer NOT NULL DEFAULT 1,
    issued_at timestamptz NOT NULL,
    rotate_after timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    expired_at timestamptz,                           -- the broker refuses it since
    revoked_at timestamptz,
    revoked_by text,
    revoke_reason text,
    version text NOT NULL DEFAULT '',                 -- the agent release it runs
    config_version text NOT NULL DEFAULT '',          -- the remote config it applied
    last_report_at timestamptz,
    hardware jsonb NOT NULL DEFAULT '{}'
);

-- Who did what to which device, batch or release, and when.
CREATE TABLE fleet_audit (
    audit_id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    subject text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX fleet_audit_at ON fleet_audit (at DESC);
CREATE INDEX fleet_audit_subject ON fleet_audit (subject, at DESC);

-- Decisions taken on the dashboard, carried out by the fleet service (which holds the
-- broker's credentials), oldest first; the outcome is written back.
CREATE TABLE fleet_actions (
    action_id bigserial PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    requested_by text NOT NULL CHECK (length(requested_by) BETWEEN 1 AND 200),
    action text NOT NULL CHECK (action IN ('approve', 'refuse', 'revoke', 'rotate', 'reset')),
    subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 64),
    args jsonb NOT NULL DEFAULT '{}' CHECK (length(args::text) <= 4000),
    done_at timestamptz,
    ok boolean,
    outcome text NOT NULL DEFAULT ''
);
CREATE INDEX fleet_actions_queued ON fleet_actions (action_id) WHERE done_at IS NULL;
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the fleet tables and the fleet service's role; the same on both backends."""
    del caps, settings
    conn.execute(FLEET)
    create_roles(conn)  # streetsense_fleet is new since the roles were first made
