"""Alert lifecycle storage: open episodes, transitions (events) and the delivery outbox.

The alerts room decides; these functions only read and write, in bulk, in the caller's
transaction. Acknowledging lives here too, since the dashboard does it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An episode not yet resolved: pending, firing or acknowledged."""

    alert_id: int
    subject_kind: str
    subject_id: str
    state: str
    since: datetime
    clear_since: datetime | None


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An episode to open."""

    rule: str
    subject_kind: str
    subject_id: str
    site_id: str
    area: str
    severity: str
    audience: str
    state: str  # pending, or firing when the rule needs no minimum duration
    since: datetime
    value: float | None
    summary: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Event:
    """One transition waiting to be queued for delivery, with what a notification says."""

    event_id: int
    alert_id: int
    at: datetime
    transition: str
    actor: str
    note: str
    rule: str
    subject_kind: str
    subject_id: str
    site_id: str
    area: str
    severity: str
    since: datetime
    value: float | None
    summary: str


def open_alerts(conn: psycopg.Connection, rule: str) -> list[OpenAlert]:
    """Return the rule's unresolved episodes."""
    rows = conn.execute(
        "SELECT alert_id, subject_kind, subject_id, state, since, clear_since FROM alerts "
        "WHERE rule = %s AND state <> 'resolved'",
        (rule,),
    ).fetchall()
    return [OpenAlert(*row) for row in rows]


def insert_alerts(conn: psycopg.Connection, alerts: Sequence[NewAlert]) -> list[int]:
    """Open episodes (a firing one gets its event); return their ids in order."""
    if not alerts:
        return []
    rows = conn.execute(
        "INSERT INTO alerts (rule, subject_kind, subject_id, site_id, area, severity, audience, "
        "state, since, fired_at, value, summary, details) "
        "SELECT rule, kind, subject, site, area, severity, audience, state, since, "
        "CASE WHEN state = 'firing' THEN since END, value, summary, details "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
        "%s::text[], %s::text[], %s::timestamptz[], %s::float8[], %s::text[], %s::jsonb[]) "
        "WITH ORDINALITY AS n(rule, kind, subject, site, area, severity, audience, state, since, "
        "value, summary, details, position) ORDER BY position RETURNING alert_id, state, since",
        (
            [a.rule for a in alerts], [a.subject_kind for a in alerts],
            [a.subject_id for a in alerts], [a.site_id for a in alerts],
            [a.area for a in alerts], [a.severity for a in alerts],
            [a.audience for a in alerts], [a.state for a in alerts],
            [a.since for a in alerts], [a.value for a in alerts],
            [a.summary for a in alerts], [json.dumps(a.details) for a in alerts],
        ),
    ).fetchall()  # fmt: skip
    fired = [(row[0], row[2]) for row in rows if row[1] == "firing"]
    _add_events(conn, [i for i, _ in fired], [at for _, at in fired], "firing")
    return [int(row[0]) for row in rows]


def fire(
    conn: psycopg.Connection,
    ids: Sequence[int],
    at: datetime,
    values: Sequence[float | None],
    summaries: Sequence[str],
) -> None:
    """Turn pending episodes into firing ones at `at`, with their current value and summary."""
    if not ids:
        return
    conn.execute(
        "UPDATE alerts a SET state = 'firing', fired_at = %s, value = u.value, "
        "summary = u.summary FROM unnest(%s::int8[], %s::float8[], %s::text[]) "
        "AS u(alert_id, value, summary) WHERE a.alert_id = u.alert_id AND a.state = 'pending'",
        (at, list(ids), list(values), list(summaries)),
    )
    _add_events(conn, ids, [at] * len(ids), "firing")


def drop_pending(conn: psycopg.Connection, ids: Sequence[int]) -> None:
    """Forget episodes whose condition stopped before they fired (never shown, never sent)."""
    if ids:
        conn.execute(
            "DELETE FROM alerts WHERE alert_id = ANY(%s) AND state = 'pending'", (list(ids),)
        )


def set_clear_since(conn: psycopg.Connection, ids: Sequence[int], at: datetime | None) -> None:
    """Start (a time) or cancel (None) the clearing period of firing episodes."""
    if ids:
        conn.execute("UPDATE alerts SET clear_since = %s WHERE alert_id = ANY(%s)", (at, list(ids)))


def resolve(conn: psycopg.Connection, ids: Sequence[int], at: datetime) -> None:
    """Resolve episodes at `at` and record the transition."""
    if not ids:
        return
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = %s "
        "WHERE alert_id = ANY(%s) AND state IN ('firing', 'acknowledged')",
        (at, list(ids)),
    )
    _add_events(conn, ids, [at] * len(ids), "resolved")


def acknowledge(conn: psycopg.Connection, alert_id: int, by: str, note: str, at: datetime) -> bool:
    """Acknowledge a firing episode; return False when it is not firing (already acked,
    resolved or unknown), so two people acknowledging at once record one acknowledgement."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acked_by = %s, acked_at = %s, "
            "ack_note = %s WHERE alert_id = %s AND state = 'firing' RETURNING alert_id",
            (by, at, note, alert_id),
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, transition, actor, note) "
            "VALUES (%s, %s, 'acknowledged', %s, %s)",
            (alert_id, at, by, note),
        )
    return True


def _add_events(
    conn: psycopg.Connection, ids: Sequence[int], ats: Sequence[datetime], transition: str
) -> None:
    if ids:
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, transition) "
            "SELECT i, t, %s FROM unnest(%s::int8[], %s::timestamptz[]) "
            "WITH ORDINALITY AS u(i, t, n) ORDER BY n",
            (transition, list(ids), list(ats)),
        )


def unqueued_events(conn: psycopg.Connection, limit: int) -> list[Event]:
    """Return the oldest transitions not yet turned into notifications, in event order."""
    rows = conn.execute(
        "SELECT e.event_id, e.alert_id, e.at, e.transition, e.actor, e.note, a.rule, "
        "a.subject_kind, a.subject_id, a.site_id, a.area, a.severity, a.since, a.value, "
        "a.summary FROM alert_events e JOIN alerts a USING (alert_id) "
        "WHERE e.queued_at IS NULL ORDER BY e.event_id LIMIT %s",
        (limit,),
    ).fetchall()
    return [Event(*row) for row in rows]


def queue(
    conn: psycopg.Connection,
    event_ids: Sequence[int],
    at: datetime,
    notifications: Sequence[tuple[str, dict[str, Any]]],
) -> None:
    """Mark events queued and add their notifications (channel, payload) to the outbox, in order."""
    if notifications:
        conn.execute(
            "INSERT INTO alert_outbox (channel, created_at, payload, next_attempt_at) "
            "SELECT c, %s, p, %s FROM unnest(%s::text[], %s::jsonb[]) "
            "WITH ORDINALITY AS u(c, p, n) ORDER BY n",
            (at, at, [c for c, _ in notifications], [json.dumps(p) for _, p in notifications]),
        )
    if event_ids:
        conn.execute(
            "UPDATE alert_events SET queued_at = %s WHERE event_id = ANY(%s)", (at, list(event_ids))
        )


@dataclass(frozen=True, slots=True)
class Notification:
    """One outbox row waiting for delivery."""

    outbox_id: int
    channel: str
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: datetime


def pending_channels(conn: psycopg.Connection) -> list[str]:
    """Return the channels with something undelivered."""
    rows = conn.execute(
        "SELECT DISTINCT channel FROM alert_outbox WHERE delivered_at IS NULL ORDER BY channel"
    ).fetchall()
    return [str(row[0]) for row in rows]


def undelivered(conn: psycopg.Connection, channel: str, limit: int) -> list[Notification]:
    """Return a channel's oldest undelivered notifications, in the order they must go out."""
    rows = conn.execute(
        "SELECT outbox_id, channel, payload, attempts, next_attempt_at FROM alert_outbox "
        "WHERE channel = %s AND delivered_at IS NULL ORDER BY outbox_id LIMIT %s",
        (channel, limit),
    ).fetchall()
    return [Notification(*row) for row in rows]


def mark_delivered(conn: psycopg.Connection, outbox_id: int, at: datetime, note: str = "") -> None:
    """Record one notification as delivered (with a note of what went partly wrong)."""
    conn.execute(
        "UPDATE alert_outbox SET delivered_at = %s, attempts = attempts + 1, last_error = %s "
        "WHERE outbox_id = %s",
        (at, note[:1000], outbox_id),
    )


def mark_failed(conn: psycopg.Connection, outbox_id: int, error: str, retry_at: datetime) -> None:
    """Record a failed attempt and when to try again."""
    conn.execute(
        "UPDATE alert_outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s "
        "WHERE outbox_id = %s",
        (error[:1000], retry_at, outbox_id),
    )


def try_channel_lock(conn: psycopg.Connection, channel: str) -> bool:
    """Take the session lock that makes one process at a time deliver a channel (in order)."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(hashtext('streetsense-alerts-outbox'), hashtext(%s))",
        (channel,),
    ).fetchone()
    return bool(row and row[0])


def release_channel_lock(conn: psycopg.Connection, channel: str) -> None:
    """Release the lock taken by try_channel_lock."""
    conn.execute(
        "SELECT pg_advisory_unlock(hashtext('streetsense-alerts-outbox'), hashtext(%s))",
        (channel,),
    )


def try_evaluation_lock(conn: psycopg.Connection) -> bool:
    """Take the transaction lock that keeps two evaluations from moving the same episodes."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext('streetsense-alerts-evaluate'))"
    ).fetchone()
    return bool(row and row[0])
