"""Reads for the planners' dashboard: the registry, current state and rollup series.

Every function returns a `Table` (column names and rows) so the store stays free of pandas.
Series come from the rollup tiers (`occupancy_5m|1h|1d`, `flow_5m|1h|1d`), never raw readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql

TIERS: Final = ("5m", "1h", "1d")
TIER_STEP: Final = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
# A segment whose speed falls below this share of its free-flow speed counts as congested.
CONGESTED_SPEED_RATIO: Final = 0.5
# segment_now's rows (latest complete 5-minute bucket within a day) as one index probe per
# segment: the view sorts a whole day of buckets, seconds at 5,000 segments.
SEGMENTS_LATEST: Final = (
    "FROM segments s LEFT JOIN LATERAL (SELECT f.bucket, f.vehicle_count, f.mean_speed, "
    "f.detector_occupancy FROM flow_5m f WHERE f.segment_id = s.segment_id "
    "AND f.bucket >= now() - interval '1 day' AND f.bucket <= now() - interval '5 minutes' "
    "ORDER BY f.bucket DESC LIMIT 1) n ON true "
)


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of a read with their column names."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        """Return the values of one column."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def fetch(
    conn: psycopg.Connection, query: LiteralString | sql.SQL | sql.Composed, params: Any = None
) -> Table:
    """Run one read and return its rows with column names."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = tuple(d.name for d in cur.description or ())
        return Table(names, list(cur.fetchall()))


def pick_tier(start: datetime, end: datetime) -> str:
    """Return the coarsest tier that still gives a readable curve for the range."""
    span = end - start
    if span <= timedelta(days=2):
        return "5m"
    if span <= timedelta(days=62):
        return "1h"
    return "1d"


def rollup(stream: str, tier: str) -> sql.Identifier:
    """Return the rollup table of a stream (`occupancy` or `flow`) at a tier."""
    if stream not in ("occupancy", "flow") or tier not in TIERS:
        raise ValueError(f"no rollup {stream}_{tier}; streams occupancy, flow; tiers {TIERS}")
    return sql.Identifier(f"{stream}_{tier}")


def lots(conn: psycopg.Connection) -> Table:
    """Return the active lots of the registry."""
    return fetch(
        conn,
        "SELECT lot_id, name, kind, area, capacity, lat, lon FROM lots WHERE active "
        "ORDER BY lot_id",
    )


def segments(conn: psycopg.Connection) -> Table:
    """Return the active segments; `coordinates` is a list of [lon, lat]."""
    return fetch(
        conn,
        "SELECT segment_id, name, direction, area, speed_limit_kmh, capacity_vph, coordinates "
        "FROM segments WHERE active ORDER BY segment_id",
    )


def lots_now(conn: psycopg.Connection) -> Table:
    """Return every active lot with its live occupancy (NULL when it never reported).

    Live: from the newest reading of each of its sensors (`lot_live`), as the open feeds count,
    not from the rollups' last refresh.
    """
    return fetch(
        conn,
        "SELECT l.lot_id, l.name, l.kind, l.area, l.lat, l.lon, l.capacity, n.occupied, "
        "n.occupancy, n.observed_at FROM lots l LEFT JOIN lot_live n USING (lot_id) "
        "WHERE l.active ORDER BY n.occupancy DESC NULLS LAST, l.lot_id",
    )


def segments_now(conn: psycopg.Connection) -> Table:
    """Return every active segment with its latest complete 5-minute bucket.

    `speed_ratio` is the mean speed over the speed limit, our free-flow speed.
    """
    return fetch(
        conn,
        "SELECT s.segment_id, s.name, s.area, s.coordinates, s.speed_limit_kmh, "
        "s.capacity_vph, n.bucket, n.vehicle_count, n.mean_speed, n.detector_occupancy, "
        "n.mean_speed / s.speed_limit_kmh AS speed_ratio "
        + SEGMENTS_LATEST
        + "WHERE s.active ORDER BY speed_ratio ASC NULLS LAST, s.segment_id",
    )


def city_kpis(conn: psycopg.Connection) -> dict[str, float]:
    """Return the city-wide figures beyond the lots: congested segments, offline devices.

    The lots' figures come from `lots_now`, which the page reads anyway (one live read).
    """
    row = fetch(
        conn,
        "SELECT "
        " (SELECT count(*) "
        + SEGMENTS_LATEST
        + "   WHERE s.active AND n.mean_speed < %(ratio)s * s.speed_limit_kmh),"
        + " (SELECT count(*) FROM devices d LEFT JOIN device_state ds USING (device_id)"
        "   WHERE d.active AND NOT coalesce(ds.online, false)),"
        " (SELECT count(*) FROM devices WHERE active)",
        {"ratio": CONGESTED_SPEED_RATIO},
    ).rows[0]
    names = ("segments_congested", "devices_offline", "devices")
    return {name: float(value) for name, value in zip(names, row, strict=True)}


def occupancy_series(
    conn: psycopg.Connection, lot_ids: list[str], start: datetime, end: datetime, tier: str
) -> Table:
    """Return the occupancy of some lots in [start, end) at a tier."""
    return fetch(
        conn,
        sql.SQL(
            "SELECT lot_id, bucket, occupied, capacity, occupancy FROM {} "
            "WHERE lot_id = ANY(%s) AND bucket >= %s AND bucket < %s ORDER BY lot_id, bucket"
        ).format(rollup("occupancy", tier)),
        (lot_ids, start, end),
    )


def flow_series(
    conn: psycopg.Connection, segment_ids: list[str], start: datetime, end: datetime, tier: str
) -> Table:
    """Return flow (vehicles per hour) and speed of some segments in [start, end) at a tier."""
    hours = TIER_STEP[tier] / timedelta(hours=1)
    return fetch(
        conn,
        sql.SQL(
            "SELECT segment_id, bucket, vehicle_count, vehicle_count / %s AS flow_vph, "
            "mean_speed, detector_occupancy FROM {} "
            "WHERE segment_id = ANY(%s) AND bucket >= %s AND bucket < %s "
            "ORDER BY segment_id, bucket"
        ).format(rollup("flow", tier)),
        (hours, segment_ids, start, end),
    )


def occupancy_hour_of_week(
    conn: psycopg.Connection, lot_ids: list[str], start: datetime, end: datetime, timezone: str
) -> Table:
    """Return mean occupancy by local weekday (1 = Monday) and hour over the hourly tier."""
    return fetch(
        conn,
        "SELECT extract(isodow FROM bucket AT TIME ZONE %(tz)s)::int AS weekday, "
        "extract(hour FROM bucket AT TIME ZONE %(tz)s)::int AS hour, "
        "avg(occupancy) AS occupancy FROM occupancy_1h "
        "WHERE lot_id = ANY(%(lots)s) AND bucket >= %(start)s AND bucket < %(end)s "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        {"tz": timezone, "lots": lot_ids, "start": start, "end": end},
    )


def time_above(
    conn: psycopg.Connection,
    lot_ids: list[str],
    start: datetime,
    end: datetime,
    threshold: float,
) -> Table:
    """Return per lot the share of time at or above an occupancy threshold, and the mean.

    Buckets are 5 minutes for up to two days and hourly beyond: a daily mean hides peaks.
    """
    tier = "5m" if end - start <= timedelta(days=2) else "1h"
    return fetch(
        conn,
        sql.SQL(
            "SELECT lot_id, avg((occupancy >= %s)::int)::float8 AS share_above, "
            "avg(occupancy) AS mean_occupancy, max(occupancy) AS peak_occupancy, "
            "count(*) AS buckets FROM {} "
            "WHERE lot_id = ANY(%s) AND bucket >= %s AND bucket < %s "
            "GROUP BY lot_id ORDER BY lot_id"
        ).format(rollup("occupancy", tier)),
        (threshold, lot_ids, start, end),
    )


def flow_peak_profile(
    conn: psycopg.Connection, segment_ids: list[str], start: datetime, end: datetime, timezone: str
) -> Table:
    """Return mean hourly flow by local hour, split into weekdays and weekends."""
    return fetch(
        conn,
        "SELECT CASE WHEN extract(isodow FROM bucket AT TIME ZONE %(tz)s) >= 6 "
        "THEN 'weekend' ELSE 'weekday' END AS day_type, "
        "extract(hour FROM bucket AT TIME ZONE %(tz)s)::int AS hour, "
        "avg(vehicle_count) AS flow_vph, avg(mean_speed) AS mean_speed FROM flow_1h "
        "WHERE segment_id = ANY(%(segments)s) AND bucket >= %(start)s AND bucket < %(end)s "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        {"tz": timezone, "segments": segment_ids, "start": start, "end": end},
    )


def congestion_ranking(
    conn: psycopg.Connection, start: datetime, end: datetime, tier: str, limit: int
) -> Table:
    """Return the segments ranked by the share of buckets spent congested, worst first."""
    return fetch(
        conn,
        sql.SQL(
            "SELECT f.segment_id, s.name, s.area, "
            "avg((f.mean_speed < %s * s.speed_limit_kmh)::int)::float8 AS share_congested, "
            "avg(f.mean_speed / s.speed_limit_kmh) AS mean_speed_ratio, "
            "sum(f.vehicle_count) AS vehicles FROM {} f JOIN segments s USING (segment_id) "
            "WHERE s.active AND f.bucket >= %s AND f.bucket < %s AND f.mean_speed IS NOT NULL "
            "GROUP BY f.segment_id, s.name, s.area "
            "ORDER BY share_congested DESC, mean_speed_ratio ASC, f.segment_id LIMIT %s"
        ).format(rollup("flow", tier)),
        (CONGESTED_SPEED_RATIO, start, end, limit),
    )
