"""Enrolled devices in the database: credentials' life, revocation, reports, queued actions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from store.dashboard_reads import Table, fetch

ACTIONS: Final = ("approve", "refuse", "revoke", "rotate", "reset", "stop-rollout")


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """One enrolled device's broker identity and the life of its password."""

    device_id: str
    site_id: str
    serial: str
    batch_id: str
    username: str
    generation: int
    issued_at: datetime
    rotate_after: datetime
    expires_at: datetime
    expired_at: datetime | None
    revoked_at: datetime | None
    version: str


_DEVICE = (
    "SELECT f.device_id, d.site_id, f.serial, f.batch_id, f.username, f.generation, f.issued_at,"
    " f.rotate_after, f.expires_at, f.expired_at, f.revoked_at, f.version "
    "FROM fleet_devices f JOIN devices d USING (device_id) "
)


def device(conn: psycopg.Connection, device_id: str, *, lock: bool = False) -> FleetDevice | None:
    """Return an enrolled device (its row locked for update when asked), or None."""
    query = _DEVICE + "WHERE f.device_id = %s" + (" FOR UPDATE OF f" if lock else "")
    row = conn.execute(query, (device_id,)).fetchone()
    return None if row is None else FleetDevice(*row)


def devices_by_id(conn: psycopg.Connection, device_ids: list[str]) -> list[FleetDevice]:
    """Return enrolled devices among these ids."""
    rows = conn.execute(_DEVICE + "WHERE f.device_id = ANY(%s) ORDER BY f.device_id",
                        (device_ids,)).fetchall()  # fmt: skip
    return [FleetDevice(*row) for row in rows]


def renew(
    conn: psycopg.Connection,
    device_id: str,
    generation: int,
    issued_at: datetime,
    rotate_after: datetime,
    expires_at: datetime,
) -> None:
    """Record a device's new password generation and its life."""
    conn.execute(
        "UPDATE fleet_devices SET generation = %s, issued_at = %s, rotate_after = %s, "
        "expires_at = %s, expired_at = NULL WHERE device_id = %s",
        (generation, issued_at, rotate_after, expires_at, device_id),
    )


def revoke(conn: psycopg.Connection, device_id: str, by: str, reason: str, at: datetime) -> None:
    """Mark a device revoked: its enrolment too, and the registry no longer takes its data."""
    conn.execute(
        "UPDATE fleet_devices SET revoked_at = %s, revoked_by = %s, revoke_reason = %s "
        "WHERE device_id = %s",
        (at, by[:200], reason[:500], device_id),
    )
    conn.execute("UPDATE devices SET active = false WHERE device_id = %s", (device_id,))
    conn.execute(
        "UPDATE fleet_enrolments SET state = 'revoked', decided_by = %s, decided_at = %s, "
        "reason = %s WHERE device_id = %s",
        (by[:200], at, reason[:500], device_id),
    )


def forget_device(conn: psycopg.Connection, device_id: str) -> None:
    """Drop a revoked device's fleet row (before its serial enrols anew); its data stay."""
    conn.execute("DELETE FROM fleet_devices WHERE device_id = %s", (device_id,))


def expiring(conn: psycopg.Connection, now: datetime) -> list[str]:
    """Return devices whose password expired and that the broker still accepts."""
    rows = conn.execute(
        "SELECT device_id FROM fleet_devices WHERE expires_at <= %s AND expired_at IS NULL "
        "AND revoked_at IS NULL ORDER BY device_id",
        (now,),
    ).fetchall()
    return [row[0] for row in rows]


def mark_expired(conn: psycopg.Connection, device_id: str, at: datetime) -> None:
    """Record that the broker refuses a device since its password expired."""
    conn.execute("UPDATE fleet_devices SET expired_at = %s WHERE device_id = %s", (at, device_id))


def note_report(
    conn: psycopg.Connection, device_id: str, version: str, config_version: str, at: datetime
) -> None:
    """Record what a device said it runs."""
    conn.execute(
        "UPDATE fleet_devices SET version = %s, config_version = %s, last_report_at = %s "
        "WHERE device_id = %s",
        (version, config_version, at, device_id),
    )


def set_intended_config(
    conn: psycopg.Connection, device_id: str, version: str, at: datetime
) -> bool:
    """Record the config version operators intend for a device; False if not enrolled."""
    done = conn.execute(
        "UPDATE fleet_devices SET intended_config_version = %s, intended_config_at = %s "
        "WHERE device_id = %s",
        (version, at, device_id),
    )
    return done.rowcount > 0


def queue_action(
    conn: psycopg.Connection,
    action: str,
    subject: str,
    requested_by: str,
    at: datetime,
    args: dict[str, Any] | None = None,
) -> int:
    """Queue a decision for the fleet service; return its id."""
    row = conn.execute(
        "INSERT INTO fleet_actions (requested_at, requested_by, action, subject, args) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING action_id",
        (at, requested_by[:200], action, subject, json.dumps(args or {})),
    ).fetchone()
    assert row is not None
    return int(row[0])


@dataclass(frozen=True, slots=True)
class QueuedAction:
    """A decision waiting to be carried out."""

    action_id: int
    requested_at: datetime
    requested_by: str
    action: str
    subject: str
    args: dict[str, Any]


def claim_action(conn: psycopg.Connection, action_id: int | None = None) -> QueuedAction | None:
    """Lock the oldest queued action (or this one) for the caller's transaction, or None."""
    row = conn.execute(
        "SELECT action_id, requested_at, requested_by, action, subject, args FROM fleet_actions "
        "WHERE done_at IS NULL AND (%s::bigint IS NULL OR action_id = %s) "
        "ORDER BY action_id LIMIT 1 FOR UPDATE SKIP LOCKED",
        (action_id, action_id),
    ).fetchone()
    return None if row is None else QueuedAction(*row)


def finish_action(
    conn: psycopg.Connection, action_id: int, ok: bool, outcome: str, at: datetime
) -> None:
    """Write an action's outcome."""
    conn.execute(
        "UPDATE fleet_actions SET done_at = %s, ok = %s, outcome = %s WHERE action_id = %s",
        (at, ok, outcome[:1000], action_id),
    )


def action_outcome(conn: psycopg.Connection, action_id: int) -> tuple[bool | None, str] | None:
    """Return (ok, outcome) of an action once done, (None, '') while queued, None if unknown."""
    row = conn.execute(
        "SELECT done_at IS NOT NULL, ok, outcome FROM fleet_actions WHERE action_id = %s",
        (action_id,),
    ).fetchone()
    if row is None:
        return None
    return (row[1], row[2]) if row[0] else (None, "")


def audit_log(conn: psycopg.Connection, limit: int, subject: str | None = None) -> Table:
    """Return the audit log, newest first (of one subject when given)."""
    return fetch(
        conn,
        "SELECT at, actor, action, subject, details FROM fleet_audit "
        "WHERE %s::text IS NULL OR subject = %s ORDER BY at DESC, audit_id DESC LIMIT %s",
        (subject, subject, limit),
    )


def recent_actions(conn: psycopg.Connection, limit: int) -> Table:
    """Return the latest queued actions with their outcomes, newest first."""
    return fetch(
        conn,
        "SELECT action_id, requested_at, requested_by, action, subject, done_at, ok, outcome "
        "FROM fleet_actions ORDER BY action_id DESC LIMIT %s",
        (limit,),
    )


# The fleet view: every enrolled device with what it runs, its credential's life, health
# (device_state, written by ingest from the agent's heartbeat) and its latest rollout.
_FLEET_VIEW = """
SELECT f.device_id, d.site_id, d.kind, coalesce(d.lot_id, d.segment_id, '') AS place, f.serial,
       f.batch_id, f.version, f.config_version, f.intended_config_version,
       (f.intended_config_version <> '' AND f.intended_config_version <> f.config_version)
           AS config_drift,
       CASE WHEN f.revoked_at IS NOT NULL THEN 'revoked'
            WHEN f.expired_at IS NOT NULL THEN 'expired'
            WHEN coalesce(ds.online, false) THEN 'online'
            WHEN ds.device_id IS NULL THEN 'never seen'
            ELSE 'offline' END AS state,
       f.generation, f.expires_at, f.rotate_after, ds.last_seen_at, f.last_report_at,
       (ds.status->>'buffer_depth')::float8 AS buffer_depth, f.enrolled_at, f.revoked_at,
       f.revoked_by, f.revoke_reason,
       ru.rollout_id, r.version AS rollout_version, ru.state AS rollout_state,
       ru.reason AS rollout_reason
FROM fleet_devices f JOIN devices d USING (device_id)
LEFT JOIN device_state ds USING (device_id)
LEFT JOIN LATERAL (
    SELECT rd.rollout_id, rd.state, rd.reason FROM fleet_rollout_devices rd
    WHERE rd.device_id = f.device_id ORDER BY rd.rollout_id DESC LIMIT 1
) ru ON true
LEFT JOIN fleet_rollouts r ON r.rollout_id = ru.rollout_id
WHERE (%(site)s::text IS NULL OR d.site_id = %(site)s)
ORDER BY f.device_id LIMIT %(limit)s
"""


def fleet_view(conn: psycopg.Connection, limit: int, site: str | None = None) -> Table:
    """Return the enrolled devices (of one site) with version, credential life and health."""
    return fetch(conn, _FLEET_VIEW, {"site": site, "limit": limit})
