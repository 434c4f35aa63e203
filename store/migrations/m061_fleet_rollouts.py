"""Signed releases of the edge agent and their staged rollouts: waves, per-device progress and
failures (docs/edge.md); stopping a rollout from the dashboard is a queued action too."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

ROLLOUTS = """
-- A release bundle, checked against the city's release key before it was published.
CREATE TABLE fleet_releases (
    version text PRIMARY KEY,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes integer NOT NULL,
    manifest jsonb NOT NULL,
    published_at timestamptz NOT NULL,
    published_by text NOT NULL
);

-- A rollout: the canary wave (0), then `waves` waves, each started once the previous one is
-- updated and healthy for `soak_s`; more than `max_failures` failed devices stop it.
CREATE TABLE fleet_rollouts (
    rollout_id bigserial PRIMARY KEY,
    version text NOT NULL REFERENCES fleet_releases,
    state text NOT NULL CHECK (state IN ('running', 'done', 'stopped', 'failed')),
    site_id text,                                     -- NULL: every site
    canary_share double precision NOT NULL CHECK (canary_share > 0 AND canary_share <= 1),
    waves integer NOT NULL CHECK (waves BETWEEN 1 AND 100),
    deadline_s double precision NOT NULL,
    soak_s double precision NOT NULL,
    max_failures integer NOT NULL DEFAULT 0,
    wave integer NOT NULL DEFAULT 0,
    wave_updated_at timestamptz,                      -- the current wave's last device updated
    started_at timestamptz NOT NULL,
    started_by text NOT NULL,
    ended_at timestamptz,
    ended_by text,
    reason text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX fleet_rollouts_one_running ON fleet_rollouts ((true)) WHERE state = 'running';

CREATE TABLE fleet_rollout_devices (
    rollout_id bigint NOT NULL REFERENCES fleet_rollouts,
    device_id text NOT NULL REFERENCES devices,
    wave integer NOT NULL,
    from_version text NOT NULL DEFAULT '',
    state text NOT NULL CHECK (state IN ('waiting', 'commanded', 'installing', 'updated',
                                         'refused', 'rolled_back', 'failed', 'skipped')),
    reason text NOT NULL DEFAULT '',
    commanded_at timestamptz,
    changed_at timestamptz,
    buffer_at_command double precision,
    PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX fleet_rollout_devices_device ON fleet_rollout_devices (device_id, rollout_id DESC);

ALTER TABLE fleet_actions DROP CONSTRAINT fleet_actions_action_check;
ALTER TABLE fleet_actions ADD CONSTRAINT fleet_actions_action_check
    CHECK (action IN ('approve', 'refuse', 'revoke', 'rotate', 'reset', 'stop-rollout'));
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the releases and rollouts tables; the same on both backends."""
    del caps, settings
    conn.execute(ROLLOUTS)
