"""Operators' status overrides of lots: set, clear, read, with every change in the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import psycopg

from store.dashboard_reads import Table, fetch
from streetsense.errors import RegistryError
from streetsense.hours import OpeningStatus
from streetsense.lot_status import StatusOverride

VIAS: Final = ("cli", "dashboard")


def set_override(conn: psycopg.Connection, override: StatusOverride, via: str) -> None:
    """Record an override (replacing the lot's current one) and audit it, in one transaction.

    Raises:
        RegistryError: the lot is not an active lot of the registry.
    """
    with conn.transaction():
        _require_lot(conn, override.lot_id)
        conn.execute(
            "INSERT INTO lot_status_overrides (lot_id, status, reason, set_by, set_at, until) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (lot_id) DO UPDATE SET "
            "status = EXCLUDED.status, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by, "
            "set_at = EXCLUDED.set_at, until = EXCLUDED.until",
            (override.lot_id, override.status.value, override.reason, override.set_by,
             override.set_at, override.until),
        )  # fmt: skip
        _audit(conn, override.lot_id, "set", override.status.value, override.reason,
               override.set_by, via, override.set_at, override.until)  # fmt: skip


def clear_override(
    conn: psycopg.Connection, lot_id: str, actor: str, reason: str, via: str, at: datetime
) -> bool:
    """Remove a lot's override (its opening hours rule again); audit it. Return whether one was
    in place."""
    # Validates actor and reason the same way a set does.
    StatusOverride(lot_id, OpeningStatus.OPEN, reason, actor, at)
    with conn.transaction():
        _require_lot(conn, lot_id)
        removed = conn.execute(
            "DELETE FROM lot_status_overrides WHERE lot_id = %s", (lot_id,)
        ).rowcount
        _audit(conn, lot_id, "clear", None, reason, actor, via, at, None)
    return removed > 0


def read_overrides(conn: psycopg.Connection) -> dict[str, StatusOverride]:
    """Return the override of every lot that has one (with who set it: not for the public)."""
    rows = conn.execute(
        "SELECT lot_id, status, reason, set_by, set_at, until FROM lot_status_overrides"
    ).fetchall()
    return {
        row[0]: StatusOverride(row[0], OpeningStatus(row[1]), row[2], row[3], row[4], row[5])
        for row in rows
    }


def lot_hours(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    """Return (lot id, name, opening hours) of every active lot, by id."""
    rows = conn.execute(
        "SELECT lot_id, name, opening_hours FROM lots WHERE active ORDER BY lot_id"
    ).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def audit_log(conn: psycopg.Connection, lot_id: str | None, limit: int) -> Table:
    """Return the latest override changes, newest first (of one lot, or all)."""
    return fetch(
        conn,
        "SELECT at, lot_id, action, status, reason, actor, via, until FROM lot_status_audit "
        "WHERE %(lot)s::text IS NULL OR lot_id = %(lot)s ORDER BY at DESC, id DESC "
        "LIMIT %(limit)s",
        {"lot": lot_id, "limit": limit},
    )


def _require_lot(conn: psycopg.Connection, lot_id: str) -> None:
    found = conn.execute("SELECT 1 FROM lots WHERE lot_id = %s AND active", (lot_id,)).fetchone()
    if found is None:
        raise RegistryError(
            f"there is no active lot {lot_id[:64]!r}; list the lots with "
            "`streetsense registry status`"
        )


def _audit(
    conn: psycopg.Connection,
    lot_id: str,
    action: str,
    status: str | None,
    reason: str,
    actor: str,
    via: str,
    at: datetime,
    until: datetime | None,
) -> None:
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}")
    conn.execute(
        "INSERT INTO lot_status_audit (lot_id, action, status, reason, actor, via, at, until) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (lot_id, action, status, reason, actor, via, at, until),
    )
