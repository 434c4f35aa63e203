"""Fleet enrolment in the database: batches, the allow-list, enrolment requests, registration."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg

from store.dashboard_reads import Table, fetch


@dataclass(frozen=True, slots=True)
class SpotPlace:
    """A spot an enrolled gateway senses: the spot's id, the sub-id it reports, its category."""

    spot: str
    sensor: str = ""
    category: str = "general"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an enrolled device goes: its id, site and what it measures."""

    serial: str
    device_id: str
    site_id: str
    kind: str
    lot_id: str | None = None
    segment_id: str | None = None
    spots: tuple[SpotPlace, ...] = ()
    lat: float | None = None
    lon: float | None = None
    batch_id: str | None = None  # None: a device of any batch


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch of device images sharing one bootstrap secret."""

    batch_id: str
    username: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One serial's enrolment as the database holds it."""

    serial: str
    batch_id: str
    state: str
    password_sha256: str
    device_id: str | None
    reason: str
    conflicts: int


def audit(
    conn: psycopg.Connection,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Record who did what to which device, batch or release, and when."""
    conn.execute(
        "INSERT INTO fleet_audit (at, actor, action, subject, details) VALUES (%s, %s, %s, %s, %s)",
        (at, actor[:200], action, subject[:200], json.dumps(details or {})),
    )


def create_batch(conn: psycopg.Connection, batch: Batch, created_by: str, note: str = "") -> None:
    """Record a new batch (its bootstrap client exists in the broker already)."""
    conn.execute(
        "INSERT INTO fleet_batches (batch_id, username, created_at, created_by, expires_at, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (batch.batch_id, batch.username, batch.created_at, created_by, batch.expires_at, note),
    )


def batch(conn: psycopg.Connection, batch_id: str) -> Batch | None:
    """Return one batch, or None."""
    row = conn.execute(
        "SELECT batch_id, username, created_at, expires_at, closed_at FROM fleet_batches "
        "WHERE batch_id = %s",
        (batch_id,),
    ).fetchone()
    return None if row is None else Batch(*row)


def batches(conn: psycopg.Connection) -> Table:
    """Return every batch with its enrolment counts."""
    return fetch(
        conn,
        "SELECT b.batch_id, b.username, b.created_at, b.created_by, b.expires_at, b.closed_at, "
        "b.note, count(e.serial) FILTER (WHERE e.state = 'enrolled') AS enrolled, "
        "count(e.serial) FILTER (WHERE e.state = 'pending') AS pending "
        "FROM fleet_batches b LEFT JOIN fleet_enrolments e USING (batch_id) "
        "GROUP BY b.batch_id ORDER BY b.created_at",
    )


def expired_batches(conn: psycopg.Connection, now: datetime) -> list[Batch]:
    """Return batches past their expiry that are not closed yet."""
    rows = conn.execute(
        "SELECT batch_id, username, created_at, expires_at, closed_at FROM fleet_batches "
        "WHERE closed_at IS NULL AND expires_at <= %s ORDER BY batch_id",
        (now,),
    ).fetchall()
    return [Batch(*row) for row in rows]


def close_batch(conn: psycopg.Connection, batch_id: str, at: datetime) -> bool:
    """Mark a batch closed (its bootstrap client is disabled); False when it was already."""
    done = conn.execute(
        "UPDATE fleet_batches SET closed_at = %s WHERE batch_id = %s AND closed_at IS NULL",
        (at, batch_id),
    )
    return done.rowcount == 1


def placement_problems(conn: psycopg.Connection, places: list[Placement]) -> list[str]:
    """Return what is wrong with placements against the registry and the allow-list (empty: ok)."""
    problems: list[str] = []
    sites = {row[0] for row in conn.execute("SELECT site_id FROM sites")}
    lots = _pairs(conn, "SELECT lot_id, site_id FROM lots WHERE active")
    segments = _pairs(conn, "SELECT segment_id, site_id FROM segments WHERE active")
    taken_devices = _pairs(conn, "SELECT device_id, serial FROM fleet_allowlist")
    enrolled = _pairs(conn, "SELECT device_id, serial FROM fleet_devices")
    spot_owner = _pairs(conn, "SELECT spot_id, device_id FROM spots")
    batches_known = {row[0] for row in conn.execute("SELECT batch_id FROM fleet_batches")}
    for place in places:
        name = f"serial {place.serial}"
        if place.site_id not in sites:
            problems.append(f"{name}: site {place.site_id!r} is not in the registry")
        if place.batch_id is not None and place.batch_id not in batches_known:
            problems.append(f"{name}: batch {place.batch_id!r} does not exist")
        if place.kind in ("parking", "counter"):
            if lots.get(place.lot_id or "") != place.site_id:
                problems.append(
                    f"{name}: a {place.kind} device needs a lot of site {place.site_id!r} "
                    f"in the registry; {place.lot_id!r} is not one"
                )
        elif place.kind == "traffic" and segments.get(place.segment_id or "") != place.site_id:
            problems.append(
                f"{name}: a traffic device needs a segment of site {place.site_id!r} in the "
                f"registry; {place.segment_id!r} is not one"
            )
        for owner in (taken_devices.get(place.device_id), enrolled.get(place.device_id)):
            if owner is not None and owner != place.serial:
                problems.append(f"{name}: device id {place.device_id!r} belongs to serial {owner}")
        for spot in place.spots:
            holder = spot_owner.get(spot.spot)
            if holder is not None and holder != place.device_id:
                problems.append(f"{name}: spot {spot.spot!r} is sensed by device {holder}")
    return problems


def _pairs(conn: psycopg.Connection, query: LiteralString) -> dict[str, str]:
    return {str(key): str(value) for key, value in conn.execute(query)}


def save_allowlist(
    conn: psycopg.Connection, places: list[Placement], added_by: str, source: str, at: datetime
) -> int:
    """Add or replace allow-list entries (by serial); return how many were written."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fleet_allowlist (serial, batch_id, device_id, site_id, kind, lot_id, "
            "segment_id, spots, lat, lon, added_at, added_by, source) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (serial) DO UPDATE SET batch_id = EXCLUDED.batch_id, "
            "device_id = EXCLUDED.device_id, site_id = EXCLUDED.site_id, kind = EXCLUDED.kind, "
            "lot_id = EXCLUDED.lot_id, segment_id = EXCLUDED.segment_id, "
            "spots = EXCLUDED.spots, lat = EXCLUDED.lat, lon = EXCLUDED.lon, "
            "added_at = EXCLUDED.added_at, added_by = EXCLUDED.added_by, source = EXCLUDED.source",
            [
                (p.serial, p.batch_id, p.device_id, p.site_id, p.kind, p.lot_id, p.segment_id,
                 json.dumps([_spot_json(s) for s in p.spots]), p.lat, p.lon, at, added_by,
                 source)
                for p in places
            ],
        )  # fmt: skip
    return len(places)


def _spot_json(spot: SpotPlace) -> dict[str, str]:
    return {"spot": spot.spot, "sensor": spot.sensor, "category": spot.category}


def allowed(conn: psycopg.Connection, serial: str) -> Placement | None:
    """Return the allow-list's placement of a serial, or None."""
    row = conn.execute(
        "SELECT serial, device_id, site_id, kind, lot_id, segment_id, spots, lat, lon, batch_id "
        "FROM fleet_allowlist WHERE serial = %s",
        (serial,),
    ).fetchone()
    if row is None:
        return None
    spots = tuple(SpotPlace(s["spot"], s["sensor"], s["category"]) for s in row[6])
    return Placement(row[0], row[1], row[2], row[3], row[4], row[5], spots, row[7], row[8], row[9])


def allowlist(conn: psycopg.Connection) -> Table:
    """Return the allow-list with each serial's enrolment state."""
    return fetch(
        conn,
        "SELECT a.serial, a.batch_id, a.device_id, a.site_id, a.kind, "
        "coalesce(a.lot_id, a.segment_id, '') AS place, jsonb_array_length(a.spots) AS spots, "
        "coalesce(e.state, 'not seen') AS state, a.added_by, a.added_at, a.source "
        "FROM fleet_allowlist a LEFT JOIN fleet_enrolments e USING (serial) ORDER BY a.serial",
    )


def enrolment(conn: psycopg.Connection, serial: str, *, lock: bool = False) -> Enrolment | None:
    """Return one serial's enrolment (locked for update when asked), or None."""
    query = (
        "SELECT serial, batch_id, state, password_sha256, device_id, reason, conflicts "
        "FROM fleet_enrolments WHERE serial = %s"
    )
    row = conn.execute(query + (" FOR UPDATE" if lock else ""), (serial,)).fetchone()
    return None if row is None else Enrolment(*row)


def first_request(
    conn: psycopg.Connection,
    serial: str,
    batch_id: str,
    fingerprint: str,
    hardware: dict[str, str],
    agent_version: str,
    at: datetime,
) -> Enrolment | None:
    """Record a serial's first request as pending; None when another request was first."""
    row = conn.execute(
        "INSERT INTO fleet_enrolments (serial, batch_id, state, password_sha256, hardware, "
        "agent_version, first_at, last_at) VALUES (%s, %s, 'pending', %s, %s, %s, %s, %s) "
        "ON CONFLICT (serial) DO NOTHING "
        "RETURNING serial, batch_id, state, password_sha256, device_id, reason, conflicts",
        (serial, batch_id, fingerprint, json.dumps(hardware), agent_version, at, at),
    ).fetchone()
    return None if row is None else Enrolment(*row)


def note_request(conn: psycopg.Connection, serial: str, at: datetime, *, conflict: bool) -> None:
    """Count another request of a serial; a conflict is one carrying another password."""
    conn.execute(
        "UPDATE fleet_enrolments SET last_at = %s, requests = requests + 1, "
        "conflicts = conflicts + %s, last_conflict_at = CASE WHEN %s THEN %s "
        "ELSE last_conflict_at END WHERE serial = %s",
        (at, int(conflict), conflict, at, serial),
    )


def decide(
    conn: psycopg.Connection,
    serial: str,
    state: str,
    by: str,
    at: datetime,
    reason: str = "",
    device_id: str | None = None,
) -> bool:
    """Set a serial's enrolment state by a decision; False when the serial never asked."""
    done = conn.execute(
        "UPDATE fleet_enrolments SET state = %s, decided_by = %s, decided_at = %s, reason = %s, "
        "device_id = coalesce(%s, device_id) WHERE serial = %s",
        (state, by[:200], at, reason[:500], device_id, serial),
    )
    return done.rowcount == 1


def mark_enrolled(conn: psycopg.Connection, serial: str, device_id: str, at: datetime) -> None:
    """Record that a serial got its credentials as `device_id` (who approved it stays)."""
    conn.execute(
        "UPDATE fleet_enrolments SET state = 'enrolled', device_id = %s, "
        "decided_at = coalesce(decided_at, %s), decided_by = coalesce(decided_by, 'allow-list') "
        "WHERE serial = %s",
        (device_id, at, serial),
    )


def forget_enrolment(conn: psycopg.Connection, serial: str) -> bool:
    """Delete a serial's enrolment so it may enrol anew (a replaced SD card); False if none."""
    return conn.execute("DELETE FROM fleet_enrolments WHERE serial = %s", (serial,)).rowcount == 1


def pending_count(conn: psycopg.Connection, batch_id: str) -> int:
    """Return how many serials of a batch wait for an operator."""
    row = conn.execute(
        "SELECT count(*) FROM fleet_enrolments WHERE batch_id = %s AND state = 'pending'",
        (batch_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def enrolments(conn: psycopg.Connection, states: tuple[str, ...], limit: int = 1_000) -> Table:
    """Return enrolments in these states, most recent request first."""
    return fetch(
        conn,
        "SELECT e.serial, e.batch_id, e.state, e.device_id, e.hardware, e.agent_version, "
        "e.first_at, e.last_at, e.requests, e.conflicts, e.last_conflict_at, e.decided_by, "
        "e.decided_at, e.reason, a.device_id IS NOT NULL AS allow_listed "
        "FROM fleet_enrolments e LEFT JOIN fleet_allowlist a USING (serial) "
        "WHERE e.state = ANY(%s) ORDER BY e.last_at DESC LIMIT %s",
        (list(states), limit),
    )


def register(
    conn: psycopg.Connection,
    place: Placement,
    batch_id: str,
    username: str,
    hardware: dict[str, str],
    issued_at: datetime,
    rotate_after: datetime,
    expires_at: datetime,
) -> None:
    """Register an enrolled device, its spots and its credential's life, in the caller's
    transaction. A device the registry file already holds keeps its registration."""
    conn.execute(
        "INSERT INTO devices (device_id, site_id, kind, lot_id, segment_id, lat, lon, "
        "registered_by, active) VALUES (%s, %s, %s, %s, %s, %s, %s, 'fleet', true) "
        "ON CONFLICT (device_id) DO UPDATE SET site_id = EXCLUDED.site_id, "
        "kind = EXCLUDED.kind, lot_id = EXCLUDED.lot_id, segment_id = EXCLUDED.segment_id, "
        "lat = coalesce(EXCLUDED.lat, devices.lat), lon = coalesce(EXCLUDED.lon, devices.lon), "
        "active = true",
        (place.device_id, place.site_id, place.kind, place.lot_id, place.segment_id, place.lat,
         place.lon),
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO spots (spot_id, lot_id, device_id, sensor, category) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(s.spot, place.lot_id, place.device_id, s.sensor, s.category) for s in place.spots],
        )
    conn.execute(
        "INSERT INTO fleet_devices (device_id, serial, batch_id, username, enrolled_at, "
        "issued_at, rotate_after, expires_at, hardware) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (place.device_id, place.serial, batch_id, username, issued_at, issued_at, rotate_after,
         expires_at, json.dumps(hardware)),
    )  # fmt: skip
