"""device_state upkeep: one upsert per device per ingest batch (aggregated, not per reading)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

_UPSERT = """
INSERT INTO device_state AS s (device_id, site_id, last_seen_at, online, online_at, status,
    status_at, readings_total, rejected_total)
SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::bool[], %s::timestamptz[],
    %s::jsonb[], %s::timestamptz[], %s::int8[], %s::int8[]) ORDER BY 1
ON CONFLICT (device_id) DO UPDATE SET
    site_id = EXCLUDED.site_id,
    last_seen_at = GREATEST(s.last_seen_at, EXCLUDED.last_seen_at),
    online = CASE WHEN s.online_at IS NULL OR EXCLUDED.online_at >= s.online_at
        THEN EXCLUDED.online ELSE s.online END,
    online_at = GREATEST(s.online_at, EXCLUDED.online_at),
    -- older status values (a late batch) only fill kinds the newer state lacks
    status = CASE WHEN s.status_at IS NULL OR EXCLUDED.status_at >= s.status_at
        THEN s.status || EXCLUDED.status ELSE EXCLUDED.status || s.status END,
    status_at = GREATEST(s.status_at, EXCLUDED.status_at),
    readings_total = s.readings_total + EXCLUDED.readings_total,
    rejected_total = s.rejected_total + EXCLUDED.rejected_total
"""


@dataclass(frozen=True, slots=True)
class DeviceStateUpdate:
    """What one batch saw of one device."""

    device_id: str
    site_id: str
    last_seen_at: datetime
    online: bool
    online_at: datetime
    status: dict[str, Any]
    status_at: datetime | None
    readings: int
    rejected: int


def upsert_device_state(conn: psycopg.Connection, updates: Sequence[DeviceStateUpdate]) -> None:
    """Merge one batch's per-device activity into device_state, in the caller's transaction."""
    if not updates:
        return
    conn.execute(
        _UPSERT,
        (
            [u.device_id for u in updates],
            [u.site_id for u in updates],
            [u.last_seen_at for u in updates],
            [u.online for u in updates],
            [u.online_at for u in updates],
            [json.dumps(u.status) for u in updates],
            [u.status_at for u in updates],
            [u.readings for u in updates],
            [u.rejected for u in updates],
        ),
    )


def read_device_state(conn: psycopg.Connection, device_id: str) -> dict[str, Any] | None:
    """Return one device's state as a dict of its columns, or None."""
    cur = conn.execute(
        "SELECT device_id, site_id, last_seen_at, online, status, status_at, readings_total, "
        "rejected_total FROM device_state WHERE device_id = %s",
        (device_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    names = [column.name for column in cur.description or ()]
    return dict(zip(names, row, strict=True))
