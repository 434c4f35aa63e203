"""Reads behind the open feeds: registry, live lot counts, rollups, flows, forecasts.

Everything here runs under the feeds' database role, which reads aggregates only: lots and
segments, never a reading, device or spot (store.roles.FEEDS_READS; the database adds the
spot sensors up, migration 045).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import sql

from store import forecasts
from streetsense.hours import OpeningStatus

RESOLUTIONS: Final = {"5m": "occupancy_5m", "1h": "occupancy_1h", "1d": "occupancy_1d"}


@dataclass(frozen=True, slots=True)
class LotRow:
    """A lot of the registry."""

    lot_id: str
    site_id: str
    name: str
    kind: str
    capacity: int
    lat: float
    lon: float
    area: str
    opening_hours: str = ""
    spaces: dict[str, int] = field(default_factory=dict, hash=False)
    facts: dict[str, Any] = field(default_factory=dict, hash=False)
    sensed_spaces: dict[str, int] = field(default_factory=dict, hash=False)  # spot sensors


@dataclass(frozen=True, slots=True)
class PublicOverride:
    """An operator's override as the feeds may see it: no one's name."""

    lot_id: str
    status: OpeningStatus
    reason: str
    set_at: datetime
    until: datetime | None


@dataclass(frozen=True, slots=True)
class SegmentRow:
    """A road segment of the registry; coordinates are [lon, lat] pairs."""

    segment_id: str
    site_id: str
    name: str
    direction: str
    coordinates: tuple[tuple[float, float], ...]
    speed_limit_kmh: float
    capacity_vph: float
    area: str


@dataclass(frozen=True, slots=True)
class LotParking:
    """A lot's live counts: each of its sources' newest reading, added up by the database.

    `counter` and `sensed` are the occupied spaces by gate counters and by spot sensors (None
    when the lot has none that reported), `sensors` the spot sensors heard from, `categories`
    the occupied spaces per space category by spot sensors.
    """

    lot_id: str
    counter: float | None
    sensed: float | None
    sensors: int
    categories: dict[str, float]
    observed_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RecentTransactions:
    """What one poll found: the transactions (xmin) that wrote parking readings, with their
    newest receive time, and the lots they touched."""

    transactions: dict[str, datetime]
    lots: set[str]


@dataclass(frozen=True, slots=True)
class OccupancyPoint:
    """One rollup bucket of a lot."""

    bucket: datetime
    occupied: float
    capacity: int
    occupancy: float
    samples: int


@dataclass(frozen=True, slots=True)
class FlowRow:
    """The latest complete flow bucket of a segment."""

    segment_id: str
    bucket: datetime
    vehicle_count: float
    mean_speed: float | None
    detector_occupancy: float | None


def relation_exists(conn: psycopg.Connection, name: str) -> bool:
    """Tell whether a table or view exists (rollups and forecasts land in later migrations)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def read_lots(conn: psycopg.Connection) -> list[LotRow]:
    """Return every active lot, ordered by id."""
    rows = conn.execute(
        "SELECT lot_id, site_id, name, kind, capacity, lat, lon, area, opening_hours, spaces, "
        "facts, coalesce(s.sensed, '{}') FROM lots "
        "LEFT JOIN (SELECT lot_id, jsonb_object_agg(category, spots) AS sensed "
        "           FROM lot_category_sensors GROUP BY lot_id) s USING (lot_id) "
        "WHERE active ORDER BY lot_id"
    ).fetchall()
    return [LotRow(*row) for row in rows]


def read_overrides(conn: psycopg.Connection) -> dict[str, PublicOverride]:
    """Return operators' status overrides by lot (empty before migration 020)."""
    if not relation_exists(conn, "lot_status_public"):
        return {}
    rows = conn.execute(
        "SELECT lot_id, status, reason, set_at, until FROM lot_status_public"
    ).fetchall()
    return {
        row[0]: PublicOverride(row[0], OpeningStatus(row[1]), row[2], row[3], row[4])
        for row in rows
    }


def read_segments(conn: psycopg.Connection) -> list[SegmentRow]:
    """Return every active road segment, ordered by id."""
    rows = conn.execute(
        "SELECT segment_id, site_id, name, direction, coordinates, speed_limit_kmh, "
        "capacity_vph, area FROM segments WHERE active ORDER BY segment_id"
    ).fetchall()
    return [
        SegmentRow(
            segment_id=r[0],
            site_id=r[1],
            name=r[2],
            direction=r[3],
            coordinates=tuple((float(p[0]), float(p[1])) for p in _json(r[4])),
            speed_limit_kmh=float(r[5]),
            capacity_vph=float(r[6]),
            area=r[7],
        )
        for r in rows
    ]


def _json(value: object) -> list[list[float]]:
    # psycopg decodes jsonb already; a text column (older schemas) would need parsing.
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


_LOT_PARKING: Final = (
    "SELECT lot_id, counter, sensed, sensors, categories, observed_at, received_at "
    "FROM lot_parking_live"
)


def lot_parking(
    conn: psycopg.Connection, lot_ids: Collection[str] | None = None
) -> list[LotParking]:
    """Return the live counts of every lot that has any reading, or of `lot_ids` only."""
    if lot_ids is None:
        rows = conn.execute(_LOT_PARKING).fetchall()
    else:  # the filter reaches the view's sources: only these lots' sensors are read
        rows = conn.execute(_LOT_PARKING + " WHERE lot_id = ANY(%s)", (list(lot_ids),)).fetchall()
    return [LotParking(*row) for row in rows]


def parking_transactions_since(
    conn: psycopg.Connection,
    received_after: datetime | None,
    window_s: float,
    seen_transactions: Collection[str] = (),
) -> RecentTransactions:
    """Return the transactions that wrote parking readings received after a time and observed
    within the recent window, and the lots they touched (lot ids only: no value, no device).

    The observed-time window lets the time index prune; readings observed earlier and
    delivered late are picked up by the periodic full read instead. A transaction commits
    all its rows at once, so transactions already seen are skipped by their xmin: the caller
    can re-read an overlap (for batches committed after their receive time) for free.
    """
    rows = conn.execute(
        "SELECT transaction_id, received_at, lot_ids FROM feeds_parking_transactions(%s, %s, %s)",
        (received_after, window_s, list(seen_transactions)),
    ).fetchall()
    return RecentTransactions(
        transactions={xid: received for xid, received, _ in rows},
        lots={lot for *_, lots in rows for lot in lots},
    )


def occupancy_at(conn: psycopg.Connection, moment: datetime) -> dict[str, float]:
    """Return each lot's mean occupied spaces in the 5-minute bucket holding `moment`.

    Empty when the rollups are not installed yet.
    """
    if not relation_exists(conn, "occupancy_5m"):
        return {}
    rows = conn.execute(
        "SELECT lot_id, occupied FROM occupancy_5m "
        "WHERE bucket <= %s AND bucket > %s - interval '5 minutes'",
        (moment, moment),
    ).fetchall()
    return {lot: float(occupied) for lot, occupied in rows if occupied is not None}


def lot_history(
    conn: psycopg.Connection, lot_id: str, start: datetime, end: datetime, resolution: str
) -> list[OccupancyPoint] | None:
    """Return a lot's rollup buckets in [start, end), or None when rollups are not installed.

    Raises:
        KeyError: the resolution is not one of RESOLUTIONS.
    """
    table = RESOLUTIONS[resolution]
    if not relation_exists(conn, table):
        return None
    rows = conn.execute(
        sql.SQL(
            "SELECT bucket, occupied, capacity, occupancy, samples FROM {} "
            "WHERE lot_id = %s AND bucket >= %s AND bucket < %s ORDER BY bucket"
        ).format(sql.Identifier(table)),
        (lot_id, start, end),
    ).fetchall()
    return [OccupancyPoint(*row) for row in rows]


def lots_heard(conn: psycopg.Connection) -> dict[str, datetime]:
    """Return when each lot's online sensors last sent anything (heartbeats count)."""
    if not relation_exists(conn, "lot_sensors_heard"):
        return {}
    rows = conn.execute("SELECT lot_id, heard_at FROM lot_sensors_heard").fetchall()
    return {lot_id: heard_at for lot_id, heard_at in rows}


def latest_flows(conn: psycopg.Connection) -> dict[str, FlowRow] | None:
    """Return the latest complete flow bucket of each segment, or None without rollups."""
    if not relation_exists(conn, "segment_now"):
        return None
    rows = conn.execute(
        "SELECT segment_id, bucket, vehicle_count, mean_speed, detector_occupancy FROM segment_now"
    ).fetchall()
    return {row[0]: FlowRow(*row) for row in rows}


@dataclass(frozen=True, slots=True)
class ForecastSeries:
    """One series' forecast near now from its latest run: lot (occupied spaces) or segment
    (vehicles per step, km/h), times in epoch seconds with values and 80% bands in step, and
    the anchor the run started from (None: the run stored none)."""

    series_id: str
    step_seconds: int
    issued_at: datetime
    times: list[float]
    yhat: list[float]
    lo80: list[float]
    hi80: list[float]
    anchor_at: datetime | None
    anchor_value: float | None
    half_life_s: float | None


def forecast_skips(conn: psycopg.Connection, stream: str) -> dict[str, tuple[str, str]]:
    """Return, by series, why the stream's latest run left it without a forecast: a reason
    code and a sentence (m014; empty when that table is not installed)."""
    if not relation_exists(conn, "forecast_skips"):
        return {}
    return {
        series: (skip.reason, skip.detail)
        for series, skip in forecasts.latest_skips(conn, stream).items()
    }


def near_forecasts(
    conn: psycopg.Connection, stream: str, start: datetime, end: datetime
) -> list[ForecastSeries] | None:
    """Return each series' points in [start, end) from its latest recent run, with anchors,
    and one step on either side (so that any moment in the range lies between two points).

    Args:
        stream: 'occupancy' (lots), 'flow' or 'speed' (segments), as the analytics job
            writes them.

    Returns:
        One entry per series, ordered by id, or None when the forecast tables are not
        installed.
    """
    if not relation_exists(conn, "forecast_runs"):
        return None
    # One row per series with its points as arrays (binary: no text parsing), its anchor
    # joined once per series: the feeds read 10,000 series at a time.
    rows = conn.execute(
        "SELECT p.series_id, p.step_seconds, p.issued_at, p.times, p.yhat, p.lo80, p.hi80, "
        "a.observed_at, a.observed_value, a.half_life_s FROM ("
        "  SELECT f.series_id, f.run_id, r.step_seconds, r.issued_at, "
        "  array_agg(extract(epoch FROM f.at)::float8 ORDER BY f.at) AS times, "
        "  array_agg(f.yhat ORDER BY f.at) AS yhat, array_agg(f.lo80 ORDER BY f.at) AS lo80, "
        "  array_agg(f.hi80 ORDER BY f.at) AS hi80 "
        "  FROM forecasts f JOIN forecast_runs r USING (run_id) "
        "  JOIN (SELECT DISTINCT ON (f2.series_id) f2.series_id, f2.run_id FROM forecasts f2 "
        "        JOIN forecast_runs r2 USING (run_id) "
        "        WHERE r2.stream = %(stream)s AND f2.at >= %(start)s AND f2.at < %(end)s "
        "        ORDER BY f2.series_id, r2.data_end DESC, r2.issued_at DESC) latest "
        "  USING (series_id, run_id) "
        "  WHERE f.at >= %(start)s - make_interval(secs => r.step_seconds) "
        "  AND f.at < %(end)s + make_interval(secs => r.step_seconds) "
        "  GROUP BY f.series_id, f.run_id, r.step_seconds, r.issued_at) p "
        "LEFT JOIN forecast_anchors a ON a.run_id = p.run_id AND a.series_id = p.series_id "
        "ORDER BY p.series_id",
        {"stream": stream, "start": start, "end": end},
        binary=True,
    ).fetchall()
    return [ForecastSeries(*row) for row in rows]
