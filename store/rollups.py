"""Bring the occupancy and flow rollups up to date, incrementally, from new readings.

Ingest does not call this: a scheduled job (or `streetsense db refresh`) does. New readings are
found by `received_at` above a watermark, plus the devices of batches that ingest committed
too late for that scan (store.rollup_invalidations); each lot and segment they touch is
recomputed from the earliest observed time touched, so late and re-delivered readings land
where they belong and a refresh run twice changes nothing. Cost: one BRIN range scan of the
readings received since the last run, plus work proportional to the readings of the touched
lots and segments from their earliest touched bucket (bench/store_rollups.py measures it for a
city slice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg
from psycopg.pq import TransactionStatus

from store.db import detect_capabilities
from store.rollups_flow import flow_scope, refresh_flow_aggregates, refresh_flow_tables
from store.rollups_occupancy import refresh_occupancy
from streetsense.config import Settings

log = logging.getLogger(__name__)

_LOCK_KEY: Final = 7_355_108_002  # any constant shared by every process that refreshes
_STATE: Final = "rollups"
# received_at is stamped by ingest hosts on receipt, before commit: a batch committed after a
# refresh may carry times just below its watermark, so each refresh rescans this margin
# (recomputing is idempotent). Half of it covers batches committed up to 2.5 min after
# receipt, the other half ingest hosts' clocks, which must agree within 2.5 min (NTP). Ingest
# notes a batch committed later in rollup_invalidations (store.rollup_invalidations), which
# the refresh consumes, so no batch is left out however late it commits.
COMMIT_MARGIN: Final = timedelta(minutes=5)
_BEGINNING: Final = datetime(1900, 1, 1, tzinfo=UTC)
_ROLLUP_KINDS: Final = (
    "occupied",
    "occupied_spaces",
    "vehicle_count",
    "mean_speed",
    "detector_occupancy",
)

# Every (device, kind, sub_id) that `refresh` recomputes, from its earliest touched time:
# readings received since the watermark (counted as new), and the series of devices noted in
# rollup_invalidations from the late batch's earliest observed time (the readings identity
# index leads with device_id, so that part is an index scan per noted device).
NEW_READINGS = """
CREATE TEMP TABLE _rollup_new ON COMMIT DROP AS
SELECT device_id, kind, sub_id, min(first_at) AS first_at,
       max(last_received) AS last_received, sum(readings)::int8 AS readings
FROM (
    SELECT device_id, kind, sub_id, min(observed_at) AS first_at,
           max(received_at) AS last_received, count(*) AS readings
    FROM readings
    WHERE received_at > %(scan_from)s AND observed_at >= %(observed_floor)s
      AND kind = ANY(%(kinds)s)
    GROUP BY device_id, kind, sub_id
    UNION ALL
    SELECT r.device_id, r.kind, r.sub_id, min(r.observed_at), NULL, 0
    FROM unnest(%(late_devices)s::text[], %(late_from)s::timestamptz[])
         AS late (device_id, observed_from)
    JOIN readings r ON r.device_id = late.device_id AND r.observed_at >= late.observed_from
    WHERE r.kind = ANY(%(kinds)s) AND r.observed_at >= %(late_floor)s
    GROUP BY r.device_id, r.kind, r.sub_id
) found
GROUP BY device_id, kind, sub_id
"""

# Taken in the refresh's transaction: a failed refresh leaves them for the next one, and the
# advisory lock keeps two refreshes from sharing them out.
CONSUME_INVALIDATIONS = """
WITH consumed AS (DELETE FROM rollup_invalidations RETURNING device_ids, observed_from)
SELECT device_id, min(observed_from)
FROM consumed CROSS JOIN LATERAL unnest(device_ids) AS device_id
GROUP BY device_id
"""


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What one refresh did."""

    readings: int
    lots: int
    segments: int
    watermark: datetime | None
    until: datetime
    seconds: float


def refresh(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    until: datetime | None = None,
    since: datetime | None = None,
) -> RefreshResult:
    """Fold readings received since the last refresh into every rollup; safe to run at once.

    Args:
        conn: a connection that is not inside a transaction.
        settings: the settings (database backend, ingest late-data window).
        until: the end of time for carried-forward lot state (default: the server's now).
        since: also recompute every lot and segment from this time (after a bulk backfill of
            readings older than the late-data window).

    Returns:
        How many new readings were folded in and how many lots and segments were recomputed.
    """
    started = time.monotonic()
    with _locked(conn):
        caps = detect_capabilities(conn, settings.database)
        with conn.transaction():
            result, flow_start = _refresh_tables(conn, settings, until, since, caps.timescale)
        if caps.timescale and flow_start is not None:
            refresh_flow_aggregates(conn, flow_start, result.until)
            _clear_pending(conn, flow_start)
    result = replace(result, seconds=time.monotonic() - started)
    log.info(
        "rollups refreshed: %d readings, %d lots, %d segments in %.2f s",
        result.readings,
        result.lots,
        result.segments,
        result.seconds,
    )
    return result


@contextmanager
def _locked(conn: psycopg.Connection) -> Iterator[None]:
    if conn.info.transaction_status != TransactionStatus.IDLE:
        raise ValueError("refresh needs a connection outside a transaction; commit first")
    autocommit = conn.autocommit
    conn.autocommit = True  # continuous aggregates refresh outside transactions
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        yield
    finally:
        if not conn.closed:  # a lost connection has released the lock already
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.autocommit = autocommit


def _refresh_tables(
    conn: psycopg.Connection,
    settings: Settings,
    until: datetime | None,
    since: datetime | None,
    timescale: bool,
) -> tuple[RefreshResult, datetime | None]:
    watermark, refreshed_until, pending = _load_state(conn)
    until = until or _now(conn)
    scan_from, observed_floor = _scan_bounds(watermark, settings.ingest.late_window_s)
    if since is not None:  # rescan everything observed since then, whenever received
        scan_from, observed_floor = _BEGINNING, since
    # Consumed before the readings are read: a late batch commits its readings and its note
    # together, so every note taken here has its readings visible to the next statement.
    late = conn.execute(CONSUME_INVALIDATIONS).fetchall()
    if late:
        log.info("rollups: %d devices committed late, recomputing them", len(late))
    conn.execute(
        NEW_READINGS,
        {
            "scan_from": scan_from,
            "observed_floor": observed_floor,
            "kinds": list(_ROLLUP_KINDS),
            "late_devices": [device for device, _ in late],
            "late_from": [observed_from for _, observed_from in late],
            "late_floor": min((observed_from for _, observed_from in late), default=None),
        },
    )
    readings, latest = _new_totals(conn)
    conn.execute(
        "INSERT INTO occupancy_series (device_id, kind, sub_id) SELECT device_id, kind, sub_id"
        " FROM _rollup_new WHERE kind IN ('occupied', 'occupied_spaces') ON CONFLICT DO NOTHING"
    )
    lots = refresh_occupancy(conn, refreshed_until or until, until, since)
    flow_start = flow_scope(conn, since)
    segments = _count(conn, "SELECT count(*) FROM _flow_scope")
    if not timescale and flow_start is not None:
        refresh_flow_tables(conn, flow_start)
    if timescale:
        # Aggregates refresh after this commit; a range left pending by a failed refresh is
        # retried by the next one, since the watermark has already moved past its readings.
        flow_start = min(filter(None, (flow_start, pending)), default=None)
    new_watermark = max(filter(None, (watermark, latest)), default=None)
    _save_state(conn, new_watermark, until, flow_start)
    return RefreshResult(readings, lots, segments, new_watermark, until, 0.0), flow_start


def _scan_bounds(watermark: datetime | None, late_window_s: int) -> tuple[datetime, datetime]:
    """Return (received_at lower bound, observed_at lower bound) for the new-readings scan."""
    if watermark is None:
        return _BEGINNING, _BEGINNING
    scan_from = watermark - COMMIT_MARGIN
    # Ingest rejects readings older than the late window, so nothing received after the
    # watermark is older than this; the bound lets both backends skip old partitions.
    return scan_from, scan_from - timedelta(seconds=late_window_s)


def _load_state(
    conn: psycopg.Connection,
) -> tuple[datetime | None, datetime | None, datetime | None]:
    row = conn.execute(
        "SELECT watermark, refreshed_until, flow_pending_from FROM rollup_state"
        " WHERE name = %s FOR UPDATE",
        (_STATE,),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else (None, None, None)


def _save_state(
    conn: psycopg.Connection,
    watermark: datetime | None,
    until: datetime,
    flow_pending_from: datetime | None,
) -> None:
    conn.execute(
        "INSERT INTO rollup_state (name, watermark, refreshed_until, flow_pending_from,"
        " refreshed_at) VALUES (%s, %s, %s, %s, now()) ON CONFLICT (name) DO UPDATE SET"
        " watermark = EXCLUDED.watermark, refreshed_until = EXCLUDED.refreshed_until,"
        " flow_pending_from = EXCLUDED.flow_pending_from, refreshed_at = now()",
        (_STATE, watermark, until, flow_pending_from),
    )


def _clear_pending(conn: psycopg.Connection, flow_start: datetime) -> None:
    conn.execute(
        "UPDATE rollup_state SET flow_pending_from = NULL"
        " WHERE name = %s AND flow_pending_from = %s",
        (_STATE, flow_start),
    )


def _new_totals(conn: psycopg.Connection) -> tuple[int, datetime | None]:
    row = conn.execute("SELECT sum(readings)::int8, max(last_received) FROM _rollup_new").fetchone()
    if row is None or row[0] is None:
        return 0, None
    return int(row[0]), row[1]


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    return row[0] if row else datetime.now(UTC)


def _count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
