"""Releases and staged rollouts in the database: waves, per-device progress, health gates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from store.dashboard_reads import Table, fetch

FAILED_STATES: Final = ("refused", "rolled_back", "failed")
OPEN_STATES: Final = ("commanded", "installing")


@dataclass(frozen=True, slots=True)
class Release:
    """A published release bundle."""

    version: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Rollout:
    """One rollout's plan and where it stands."""

    rollout_id: int
    version: str
    state: str
    site_id: str | None
    canary_share: float
    waves: int
    deadline_s: float
    soak_s: float
    max_failures: int
    wave: int
    wave_updated_at: datetime | None
    started_at: datetime
    started_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class WaveDevice:
    """A device of a rollout wave, with its health now (device_state, from its heartbeat)."""

    device_id: str
    site_id: str
    state: str
    commanded_at: datetime | None
    buffer_at_command: float | None
    online: bool
    status_at: datetime | None
    buffer_depth: float | None
    version: str  # what it reported running last


def save_release(
    conn: psycopg.Connection, release: Release, manifest: dict[str, Any], by: str, at: datetime
) -> None:
    """Record a published release (publishing the same bundle again changes nothing)."""
    conn.execute(
        "INSERT INTO fleet_releases (version, sha256, bytes, manifest, published_at, "
        "published_by) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (version) DO UPDATE SET "
        "sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, manifest = EXCLUDED.manifest, "
        "published_at = EXCLUDED.published_at, published_by = EXCLUDED.published_by",
        (release.version, release.sha256, release.bytes, json.dumps(manifest), at, by[:200]),
    )


def release(conn: psycopg.Connection, version: str) -> Release | None:
    """Return a published release, or None."""
    row = conn.execute(
        "SELECT version, sha256, bytes FROM fleet_releases WHERE version = %s", (version,)
    ).fetchone()
    return None if row is None else Release(*row)


def releases(conn: psycopg.Connection) -> Table:
    """Return the published releases, newest first, with how many devices run each."""
    return fetch(
        conn,
        "SELECT r.version, r.sha256, r.bytes, r.published_at, r.published_by, "
        "(SELECT count(*) FROM fleet_devices f WHERE f.version = r.version "
        " AND f.revoked_at IS NULL) AS devices "
        "FROM fleet_releases r ORDER BY r.published_at DESC",
    )


def rollout_candidates(conn: psycopg.Connection, site: str | None) -> list[tuple[str, str]]:
    """Return (device id, version it runs) of enrolled devices that may be updated."""
    rows = conn.execute(
        "SELECT f.device_id, f.version FROM fleet_devices f JOIN devices d USING (device_id) "
        "WHERE f.revoked_at IS NULL AND f.expired_at IS NULL "
        "AND (%s::text IS NULL OR d.site_id = %s) ORDER BY f.device_id",
        (site, site),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def create_rollout(
    conn: psycopg.Connection, plan: Rollout, waves: list[list[tuple[str, str]]]
) -> int:
    """Record a rollout and its devices by wave (wave 0 is the canary); return its id."""
    row = conn.execute(
        "INSERT INTO fleet_rollouts (version, state, site_id, canary_share, waves, deadline_s, "
        "soak_s, max_failures, started_at, started_by) VALUES "
        "(%s, 'running', %s, %s, %s, %s, %s, %s, %s, %s) RETURNING rollout_id",
        (plan.version, plan.site_id, plan.canary_share, plan.waves, plan.deadline_s,
         plan.soak_s, plan.max_failures, plan.started_at, plan.started_by[:200]),
    ).fetchone()  # fmt: skip
    assert row is not None
    rollout_id = int(row[0])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO fleet_rollout_devices (rollout_id, device_id, wave, from_version, "
            "state) VALUES (%s, %s, %s, %s, 'waiting')",
            [(rollout_id, device, wave, version) for wave, members in enumerate(waves)
             for device, version in members],
        )  # fmt: skip
    return rollout_id


_ROLLOUT = (
    "SELECT rollout_id, version, state, site_id, canary_share, waves, deadline_s, soak_s, "
    "max_failures, wave, wave_updated_at, started_at, started_by, reason FROM fleet_rollouts "
)


def running_rollout(conn: psycopg.Connection, *, lock: bool = False) -> Rollout | None:
    """Return the rollout under way (locked for the caller's transaction when asked)."""
    query = _ROLLOUT + "WHERE state = 'running'" + (" FOR UPDATE" if lock else "")
    row = conn.execute(query).fetchone()
    return None if row is None else Rollout(*row)


def rollout(conn: psycopg.Connection, rollout_id: int | None = None) -> Rollout | None:
    """Return a rollout (the latest when no id is given), or None."""
    row = conn.execute(
        _ROLLOUT + "WHERE %s::bigint IS NULL OR rollout_id = %s ORDER BY rollout_id DESC LIMIT 1",
        (rollout_id, rollout_id),
    ).fetchone()
    return None if row is None else Rollout(*row)


def wave_devices(conn: psycopg.Connection, rollout_id: int, wave: int) -> list[WaveDevice]:
    """Return a wave's devices with their health now."""
    rows = conn.execute(
        "SELECT rd.device_id, d.site_id, rd.state, rd.commanded_at, rd.buffer_at_command, "
        "coalesce(ds.online, false), ds.status_at, (ds.status->>'buffer_depth')::float8, "
        "coalesce(f.version, '') FROM fleet_rollout_devices rd JOIN devices d USING (device_id) "
        "LEFT JOIN device_state ds USING (device_id) LEFT JOIN fleet_devices f USING (device_id) "
        "WHERE rd.rollout_id = %s AND rd.wave = %s ORDER BY rd.device_id",
        (rollout_id, wave),
    ).fetchall()
    return [WaveDevice(*row) for row in rows]


def mark_commanded(
    conn: psycopg.Connection, rollout_id: int, device_id: str, buffer: float | None, at: datetime
) -> None:
    """Record that a device was told to install the release."""
    conn.execute(
        "UPDATE fleet_rollout_devices SET state = 'commanded', commanded_at = %s, changed_at = %s,"
        " buffer_at_command = %s WHERE rollout_id = %s AND device_id = %s",
        (at, at, buffer, rollout_id, device_id),
    )


def set_device_state(
    conn: psycopg.Connection,
    rollout_id: int,
    device_id: str,
    state: str,
    reason: str,
    at: datetime,
) -> bool:
    """Move a device's progress on (never out of a final state); True when it changed."""
    done = conn.execute(
        "UPDATE fleet_rollout_devices SET state = %s, reason = %s, changed_at = %s "
        "WHERE rollout_id = %s AND device_id = %s AND state IN ('waiting', 'commanded', "
        "'installing') AND state <> %s",
        (state, reason[:500], at, rollout_id, device_id, state),
    )
    return done.rowcount > 0


def failures(conn: psycopg.Connection, rollout_id: int) -> list[tuple[str, str, str]]:
    """Return (device, state, reason) of a rollout's failed devices."""
    rows = conn.execute(
        "SELECT device_id, state, reason FROM fleet_rollout_devices WHERE rollout_id = %s "
        "AND state = ANY(%s) ORDER BY changed_at, device_id",
        (rollout_id, list(FAILED_STATES)),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def next_wave(conn: psycopg.Connection, rollout_id: int, wave: int) -> None:
    """Move a rollout on to `wave`."""
    conn.execute(
        "UPDATE fleet_rollouts SET wave = %s, wave_updated_at = NULL WHERE rollout_id = %s",
        (wave, rollout_id),
    )


def wave_updated(conn: psycopg.Connection, rollout_id: int, at: datetime) -> None:
    """Record when the current wave's devices were all updated (its soak starts)."""
    conn.execute(
        "UPDATE fleet_rollouts SET wave_updated_at = %s WHERE rollout_id = %s", (at, rollout_id)
    )


def end_rollout(
    conn: psycopg.Connection, rollout_id: int, state: str, by: str, reason: str, at: datetime
) -> list[str]:
    """End a rollout: devices not yet commanded are skipped; those commanded still report
    what became of their trial. Return the commanded devices not updated (to un-command)."""
    conn.execute(
        "UPDATE fleet_rollouts SET state = %s, ended_at = %s, ended_by = %s, reason = %s "
        "WHERE rollout_id = %s",
        (state, at, by[:200], reason[:1000], rollout_id),
    )
    conn.execute(
        "UPDATE fleet_rollout_devices SET state = 'skipped', changed_at = %s, reason = %s "
        "WHERE rollout_id = %s AND state = 'waiting'",
        (at, f"rollout {state}", rollout_id),
    )
    commanded = conn.execute(
        "SELECT device_id FROM fleet_rollout_devices WHERE rollout_id = %s "
        "AND commanded_at IS NOT NULL AND state <> 'updated'",
        (rollout_id,),
    ).fetchall()
    return [str(r[0]) for r in commanded]


def progress(conn: psycopg.Connection, rollout_id: int) -> Table:
    """Return a rollout's devices: wave, state, reason, times, what they run now."""
    return fetch(
        conn,
        "SELECT rd.device_id, d.site_id, rd.wave, rd.state, rd.from_version, f.version AS "
        "running, rd.reason, rd.commanded_at, rd.changed_at FROM fleet_rollout_devices rd "
        "JOIN devices d USING (device_id) LEFT JOIN fleet_devices f USING (device_id) "
        "WHERE rd.rollout_id = %s ORDER BY rd.wave, rd.device_id",
        (rollout_id,),
    )


def summary(conn: psycopg.Connection, rollout_id: int) -> dict[str, int]:
    """Return how many of a rollout's devices are in each state."""
    rows = conn.execute(
        "SELECT state, count(*) FROM fleet_rollout_devices WHERE rollout_id = %s GROUP BY state",
        (rollout_id,),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def rollouts(conn: psycopg.Connection, limit: int = 20) -> Table:
    """Return the latest rollouts with their counts, newest first."""
    return fetch(
        conn,
        "SELECT r.rollout_id, r.version, r.state, r.site_id, r.wave, r.waves, r.started_at, "
        "r.started_by, r.ended_at, r.ended_by, r.reason, "
        "count(*) FILTER (WHERE rd.state = 'updated') AS updated, "
        "count(*) FILTER (WHERE rd.state IN ('refused', 'rolled_back', 'failed')) AS failed, "
        "count(rd.device_id) AS devices "
        "FROM fleet_rollouts r LEFT JOIN fleet_rollout_devices rd USING (rollout_id) "
        "GROUP BY r.rollout_id ORDER BY r.rollout_id DESC LIMIT %s",
        (limit,),
    )


def wave_count(conn: psycopg.Connection, rollout_id: int) -> int:
    """Return how many waves a rollout has (the canary included)."""
    row = conn.execute(
        "SELECT max(wave) + 1 FROM fleet_rollout_devices WHERE rollout_id = %s", (rollout_id,)
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
