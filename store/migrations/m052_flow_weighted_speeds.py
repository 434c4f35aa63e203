"""Flow speeds weighted by each reading's own vehicles, on both backends.

The 5-minute flow averaged a lane's minute speeds alike and weighted only lanes by vehicles,
so when a queue formed within 5 minutes its few slow vehicles counted as much as the many
fast ones before it: up to 7-10 km/h above the speed the incident rule weighs from the same
minutes (bench/RESULTS.md). Plain PostgreSQL: the refresh now pairs each lane's reading times
(store/rollups_flow.py); this recomputes the flow tables over the late-data window.

TimescaleDB: a continuous aggregate cannot pair rows of different kinds within its bucket (no
subquery, no self-join), so `flow_lanes_5m` now keeps one row per lane and reading time (its
`bucket` still the 5 minutes, `observed_at` beside it), and the segment views and the 1 h tier
weigh those rows' speeds by their vehicles with the formulas they had: five times the rows in
that tier for agents counting every minute. An aggregate cannot be altered: the three are set
aside, built again and refreshed over the late-data window (or from the earliest raw
reading), and the views read the new ones. Older buckets (their raw readings perhaps dropped by
`database.retention_days`) stay in the old aggregates, frozen (no refresh policy), and the
views read them from there: unweighted, not lost. On both backends the recompute is bounded
so a deploy does not spend hours on a city's whole history in one statement; on plain
PostgreSQL `streetsense db refresh --since T` recomputes older buckets where wanted.

Numbered in the alerts range (051-059): the core range is full and the incident rule's data
contract is what asks for it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final

import psycopg
from psycopg import sql

from store.db import Capabilities
from store.migrations.m002_rollups import (
    LANES_COARSE,
    SEGMENT_SELECT_5M,
    SEGMENT_SELECT_COARSE,
    SPEED_SUMS,
    _timescale_policies,
    _window_days,
    segment_view,
)
from store.rollups_flow import recompute_flow_tables, refresh_flow_aggregates
from streetsense.config import DatabaseSettings

NON_TRANSACTIONAL = True  # continuous aggregates cannot be created inside a transaction

log = logging.getLogger(__name__)

TIERS: Final = (("5m", "5 minutes"), ("1h", "1 hour"), ("1d", "1 day"))
FORMER: Final = "flow_lanes_{}_unweighted"

# One row per lane and reading time: a reading's speed and its own vehicles side by side.
LANES_5M: Final = """
CREATE MATERIALIZED VIEW IF NOT EXISTS flow_lanes_5m
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket('5 minutes', observed_at) AS bucket, device_id, sub_id, observed_at,
       sum(value) FILTER (WHERE kind = 'vehicle_count') AS vehicle_count,
       avg(value) FILTER (WHERE kind = 'mean_speed') AS speed,
       sum(value) FILTER (WHERE kind = 'detector_occupancy') AS detector_sum,
       count(*) FILTER (WHERE kind = 'detector_occupancy') AS detector_samples,
       count(*) AS samples
FROM readings
WHERE kind IN ('vehicle_count', 'mean_speed', 'detector_occupancy')
GROUP BY 1, device_id, sub_id, observed_at
WITH NO DATA
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Weigh flow speeds by each reading's vehicles; recompute the late-data window."""
    start = _recompute_from(conn)
    if not caps.timescale:
        if start is not None:
            log.info("recomputing flow from %s with weighted speeds", start.date())
            with conn.transaction():
                recompute_flow_tables(conn, start)
        return
    _set_aside(conn)
    _create(conn)
    cutover = start or _today(conn)
    kept = {tier for tier, _ in TIERS if _holds_before(conn, tier, cutover)}
    _replace_views(conn, cutover, kept)
    _retire(conn, kept)
    _timescale_policies(conn, settings)
    if start is not None:
        log.info("refreshing the flow aggregates from %s with weighted speeds", start.date())
        refresh_flow_aggregates(conn, start, _now(conn))


def _recompute_from(conn: psycopg.Connection) -> datetime | None:
    """Return the first (UTC) day to recompute: the earliest traffic reading's, but within the
    late-data window the refresh policies cover (a whole history in one statement would hold
    a city's deploy for hours; older buckets keep the speed they had). None: no readings."""
    row = conn.execute(
        "SELECT CASE WHEN min(observed_at) IS NOT NULL THEN date_bin('1 day',"
        " greatest(min(observed_at), now() - %s::interval), '2000-01-01 00:00:00+00') END"
        " FROM readings WHERE kind IN ('vehicle_count', 'mean_speed', 'detector_occupancy')",
        (f"{_window_days() + 1} days",),
    ).fetchone()
    return row[0] if row else None


def _today(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT date_bin('1 day', now(), '2000-01-01 00:00:00+00')").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _has(conn: psycopg.Connection, relation: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
    return bool(row and row[0])


def _set_aside(conn: psycopg.Connection) -> None:
    """Rename the unweighted aggregates (once: a rerun finds them renamed)."""
    weighted = conn.execute(
        "SELECT 1 FROM pg_attribute"
        " WHERE attrelid = to_regclass('flow_lanes_5m') AND attname = 'observed_at'"
    ).fetchone()
    for tier, _ in TIERS:
        current, former = f"flow_lanes_{tier}", FORMER.format(tier)
        if not weighted and _has(conn, current) and not _has(conn, former):
            conn.execute(
                sql.SQL("ALTER MATERIALIZED VIEW {} RENAME TO {}").format(
                    sql.Identifier(current), sql.Identifier(former)
                )
            )


def _create(conn: psycopg.Connection) -> None:
    """Create the weighted aggregates (5 min from readings, 1 h from 5 min, 1 day from 1 h)."""
    conn.execute(LANES_5M)
    for (tier, width), (source_tier, _) in zip(TIERS[1:], TIERS[:-1], strict=True):
        speed_sum, speed_weight = SPEED_SUMS[source_tier]
        conn.execute(
            sql.SQL(LANES_COARSE).format(
                view=sql.Identifier(f"flow_lanes_{tier}"),
                width=sql.Literal(width),
                source=sql.Identifier(f"flow_lanes_{source_tier}"),
                speed_sum=sql.SQL(speed_sum),
                speed_weight=sql.SQL(speed_weight),
            )
        )
    for tier, _ in TIERS:  # as migration 009 made the others: what refresh folded in
        conn.execute(
            sql.SQL("ALTER MATERIALIZED VIEW {} SET (timescaledb.materialized_only = true)").format(
                sql.Identifier(f"flow_lanes_{tier}")
            )
        )


def _holds_before(conn: psycopg.Connection, tier: str, cutover: datetime) -> bool:
    """Tell whether the set-aside aggregate of a tier has buckets before the cutover."""
    former = FORMER.format(tier)
    if not _has(conn, former):
        return False
    row = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE bucket < %s)").format(
            sql.Identifier(former)
        ),
        (cutover,),
    ).fetchone()
    return bool(row and row[0])


def _replace_views(conn: psycopg.Connection, cutover: datetime, kept: set[str]) -> None:
    """Point the segment views at the weighted aggregates, and at the old ones before the
    cutover where those hold history the raw readings no longer have."""
    for tier, _ in TIERS:
        select = sql.SQL(SEGMENT_SELECT_5M if tier == "5m" else SEGMENT_SELECT_COARSE)
        source = f"flow_lanes_{tier}"
        if tier not in kept:
            conn.execute(segment_view(tier, select, source))
            continue
        since = sql.SQL("f.bucket >= {}").format(sql.Literal(cutover))
        before = sql.SQL("f.bucket < {}").format(sql.Literal(cutover))
        conn.execute(
            sql.SQL("CREATE OR REPLACE VIEW {} AS {} UNION ALL {}").format(
                sql.Identifier(f"flow_{tier}"),
                select.format(source=sql.Identifier(source), period=since),
                select.format(source=sql.Identifier(FORMER.format(tier)), period=before),
            )
        )


def _retire(conn: psycopg.Connection, kept: set[str]) -> None:
    """Drop the set-aside aggregates, or freeze them all where any holds history (each rests
    on the one before it)."""
    for tier, _ in reversed(TIERS):  # 1 day rests on 1 h, 1 h on 5 min
        former = FORMER.format(tier)
        if not _has(conn, former):
            continue
        if kept:
            # never refreshed again: over days without raw readings it would empty them
            conn.execute(
                "SELECT remove_continuous_aggregate_policy(%s, if_exists => true)", (former,)
            )
        else:
            conn.execute(sql.SQL("DROP MATERIALIZED VIEW {}").format(sql.Identifier(former)))
