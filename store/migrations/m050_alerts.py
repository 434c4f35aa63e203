"""Alerts: one row per (rule, subject) episode, its transitions, and the delivery outbox."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

ALERTS = """
CREATE TABLE alerts (
    alert_id bigserial PRIMARY KEY,
    rule text NOT NULL,
    -- what the alert is about: a lot, a segment, a device, or the site
    subject_kind text NOT NULL CHECK (subject_kind IN ('lot', 'segment', 'device', 'site')),
    subject_id text NOT NULL,
    site_id text NOT NULL DEFAULT '',
    area text NOT NULL DEFAULT '',
    severity text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    audience text NOT NULL CHECK (audience IN ('planners', 'field', 'platform')),
    -- pending: the condition holds but not yet for the rule's minimum duration; never shown
    state text NOT NULL CHECK (state IN ('pending', 'firing', 'acknowledged', 'resolved')),
    since timestamptz NOT NULL,            -- the condition first held
    fired_at timestamptz,
    clear_since timestamptz,               -- the condition stopped holding (hysteresis)
    resolved_at timestamptz,
    acked_by text,
    acked_at timestamptz,
    ack_note text,
    value double precision,
    summary text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}'
);
-- Repeats are deduplicated: at most one open episode per rule and subject.
CREATE UNIQUE INDEX alerts_open ON alerts (rule, subject_kind, subject_id)
    WHERE state <> 'resolved';
CREATE INDEX alerts_history ON alerts (fired_at DESC) WHERE fired_at IS NOT NULL;

-- Every transition, for planners to review and for delivery.
CREATE TABLE alert_events (
    event_id bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    at timestamptz NOT NULL,
    transition text NOT NULL CHECK (transition IN ('firing', 'acknowledged', 'resolved')),
    actor text NOT NULL DEFAULT '',
    note text NOT NULL DEFAULT '',
    -- when the event was turned into outbox rows (quiet hours hold events back)
    queued_at timestamptz
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, event_id);
CREATE INDEX alert_events_unqueued ON alert_events (event_id) WHERE queued_at IS NULL;

-- One notification per channel; a channel's rows are delivered strictly in id order.
CREATE TABLE alert_outbox (
    outbox_id bigserial PRIMARY KEY,
    channel text NOT NULL,
    created_at timestamptz NOT NULL,
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at timestamptz,
    last_error text NOT NULL DEFAULT ''
);
CREATE INDEX alert_outbox_pending ON alert_outbox (channel, outbox_id) WHERE delivered_at IS NULL;
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the alert tables; the same on TimescaleDB and plain PostgreSQL."""
    del caps, settings
    conn.execute(ALERTS)
