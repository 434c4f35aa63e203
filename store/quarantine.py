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


@dataclass(frozen=True, slots=True)
class QuarantineUsage:
    """What quarantine holds now (unreleased): distinct device ids per site, payload bytes."""

    devices_by_site: dict[str, set[str]]
    payload_bytes: int


def active_devices(conn: psycopg.Connection) -> dict[str, str]:
    """Return the registered site of every active device, by device id."""
    rows = conn.execute("SELECT device_id, site_id FROM devices WHERE active")
    return {row[0]: row[1] for row in rows}


def known_among(conn: psycopg.Connection, device_ids: Iterable[str]) -> dict[str, str]:
    """Return the registered site of those of these device ids that are active devices."""
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT device_id, site_id FROM devices WHERE active AND device_id = ANY(%s)", (ids,)
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def revoked_among(conn: psycopg.Connection, device_ids: Iterable[str]) -> dict[str, str]:
    """Return those of these device ids the fleet revoked, with who revoked them, when, why."""
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT device_id, revoked_by, revoked_at, revoke_reason FROM fleet_devices "
        "WHERE revoked_at IS NOT NULL AND device_id = ANY(%s)",
        (ids,),
    ).fetchall()
    return {row[0]: f"by {row[1]} at {row[2]:%Y-%m-%d %H:%M} UTC: {row[3]}" for row in rows}


def registered_sites(conn: psycopg.Connection) -> set[str]:
    """Return the ids of the registry's sites."""
    return {row[0] for row in conn.execute("SELECT site_id FROM sites")}


def spot_sensors(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """Return the registered spot sensors of each device ('' for a device that is one spot)."""
    sensors: dict[str, set[str]] = {}
    for device_id, sensor in conn.execute("SELECT device_id, sensor FROM spots"):
        sensors.setdefault(device_id, set()).add(sensor)
    return {device: frozenset(names) for device, names in sensors.items()}


def quarantine_usage(conn: psycopg.Connection) -> QuarantineUsage:
    """Return the device ids per site and the payload bytes quarantine holds unreleased."""
    by_site: dict[str, set[str]] = {}
    total = 0
    rows = conn.execute(
        "SELECT site_id, device_id, sum(octet_length(payload)) FROM quarantine "
        "WHERE released_at IS NULL GROUP BY site_id, device_id"
    )
    for site_id, device_id, size in rows:
        by_site.setdefault(site_id, set()).add(device_id)
        total += int(size)
    return QuarantineUsage(by_site, total)


def auto_register(conn: psycopg.Connection, devices: Sequence[tuple[str, str, str]]) -> None:
    """Register devices on first sight: (device_id, site_id, kind), registered_by='auto'."""
    if not devices:
        return
    ordered = sorted(devices)
    conn.execute(
        "INSERT INTO devices (device_id, site_id, kind, registered_by) "
        "SELECT d, s, k, 'auto' FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(d, s, k) "
        "ORDER BY d ON CONFLICT (device_id) DO UPDATE SET active = true "
        # never a device the fleet revoked (a stolen device must not come back by talking)
        "WHERE NOT EXISTS (SELECT 1 FROM fleet_devices f "
        "WHERE f.device_id = devices.device_id AND f.revoked_at IS NOT NULL)",
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
