"""Unknown devices: look them up, quarantine their messages, or register them on first sight."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    """A whole message from a device the registry does not know, kept to replay later."""

    received_at: datetime
    topic: str
    site_id: str
    device_id: str
    reason: str
    payload: bytes


def active_devices(conn: psycopg.Connection) -> set[str]:
    """Return the ids of every active device."""
    return {row[0] for row in conn.execute("SELECT device_id FROM devices WHERE active")}


def known_among(conn: psycopg.Connection, device_ids: Iterable[str]) -> set[str]:
    """Return which of these device ids are active registered devices."""
    ids = sorted(set(device_ids))
    if not ids:
        return set()
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE active AND device_id = ANY(%s)", (ids,)
    ).fetchall()
    return {row[0] for row in rows}


def auto_register(conn: psycopg.Connection, devices: Sequence[tuple[str, str, str]]) -> None:
    """Register devices on first sight: (device_id, site_id, kind), registered_by='auto'."""
    if not devices:
        return
    ordered = sorted(devices)
    conn.execute(
        "INSERT INTO devices (device_id, site_id, kind, registered_by) "
        "SELECT d, s, k, 'auto' FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(d, s, k) "
        "ORDER BY d ON CONFLICT (device_id) DO UPDATE SET active = true",
        ([d[0] for d in ordered], [d[1] for d in ordered], [d[2] for d in ordered]),
    )


def write_quarantine(conn: psycopg.Connection, messages: Sequence[QuarantinedMessage]) -> None:
    """Keep whole messages of unknown devices with the reason."""
    if not messages:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quarantine (received_at, topic, site_id, device_id, reason, payload) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (m.received_at, m.topic, m.site_id, m.device_id, m.reason, m.payload)
                for m in messages
            ],
        )


def quarantined(conn: psycopg.Connection, device_id: str) -> list[tuple[str, bytes]]:
    """Return (topic, payload) of a device's unreleased quarantined messages, oldest first."""
    rows = conn.execute(
        "SELECT topic, payload FROM quarantine WHERE device_id = %s AND released_at IS NULL "
        "ORDER BY id",
        (device_id,),
    ).fetchall()
    return [(row[0], bytes(row[1])) for row in rows]


def release_quarantine(conn: psycopg.Connection, device_id: str) -> int:
    """Mark a device's quarantined messages as released (after replay); return how many."""
    cur = conn.execute(
        "UPDATE quarantine SET released_at = now() WHERE device_id = %s AND released_at IS NULL",
        (device_id,),
    )
    return cur.rowcount
