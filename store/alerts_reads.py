"""Reads of alerts for the dashboard and the CLI: active first, history, counts per rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from store.dashboard_reads import Table, fetch

_COLUMNS = (
    "SELECT alert_id, state, severity, rule, subject_kind, subject_id, area, site_id, summary, "
    "value, since, fired_at, resolved_at, acked_by, acked_at, ack_note FROM alerts "
)
# Critical before warning before info; within a severity the newest first.
_SEVERITY_ORDER = "array_position(ARRAY['critical', 'warning', 'info'], severity)"


def active(conn: psycopg.Connection, limit: int) -> Table:
    """Return firing and acknowledged alerts: firing first, then by severity, newest first."""
    return fetch(
        conn,
        _COLUMNS + "WHERE state IN ('firing', 'acknowledged') "
        f"ORDER BY state = 'acknowledged', {_SEVERITY_ORDER}, fired_at DESC, alert_id DESC "
        "LIMIT %s",
        (limit,),
    )


def history(conn: psycopg.Connection, limit: int, since: datetime | None = None) -> Table:
    """Return every alert that fired (since `since`), newest first."""
    return fetch(
        conn,
        _COLUMNS + "WHERE fired_at IS NOT NULL AND (%s::timestamptz IS NULL OR fired_at >= %s) "
        "ORDER BY fired_at DESC, alert_id DESC LIMIT %s",
        (since, since, limit),
    )


def events(conn: psycopg.Connection, alert_id: int) -> Table:
    """Return one alert's transitions in order."""
    return fetch(
        conn,
        "SELECT at, transition, actor, note FROM alert_events WHERE alert_id = %s "
        "ORDER BY event_id",
        (alert_id,),
    )


def rule_counts(conn: psycopg.Connection, since: datetime) -> Table:
    """Return per rule: alerts fired since `since`, active now, acknowledged, mean minutes open."""
    return fetch(
        conn,
        "SELECT rule, count(*) FILTER (WHERE fired_at >= %s) AS fired, "
        "count(*) FILTER (WHERE state IN ('firing', 'acknowledged')) AS active, "
        "count(*) FILTER (WHERE acked_at >= %s) AS acknowledged, "
        "(avg(extract(epoch FROM resolved_at - fired_at)) FILTER (WHERE resolved_at >= %s) "
        "/ 60.0)::float8 AS mean_open_min "
        "FROM alerts WHERE fired_at IS NOT NULL GROUP BY rule ORDER BY fired DESC, rule",
        (since, since, since),
    )


def on_map(conn: psycopg.Connection) -> Table:
    """Return active alerts about lots and segments with a position: lon, lat (a segment's
    middle point), the most severe alert of each place, how many it has, a lot's capacity."""
    return fetch(
        conn,
        "WITH a AS (SELECT subject_kind, subject_id, count(*) AS alerts, "
        f"  (array_agg(summary ORDER BY {_SEVERITY_ORDER}, fired_at DESC))[1] AS summary, "
        f"  (array_agg(severity ORDER BY {_SEVERITY_ORDER}))[1] AS severity "
        "  FROM alerts WHERE state IN ('firing', 'acknowledged') "
        "  AND subject_kind IN ('lot', 'segment') GROUP BY 1, 2) "
        "SELECT a.subject_kind, a.subject_id, a.alerts, a.summary, a.severity, "
        "coalesce(l.lon, (s.coordinates -> (jsonb_array_length(s.coordinates) / 2) ->> 0)::float8) "
        "AS lon, "
        "coalesce(l.lat, (s.coordinates -> (jsonb_array_length(s.coordinates) / 2) ->> 1)::float8) "
        "AS lat, l.capacity "
        "FROM a LEFT JOIN lots l ON a.subject_kind = 'lot' AND l.lot_id = a.subject_id "
        "LEFT JOIN segments s ON a.subject_kind = 'segment' AND s.segment_id = a.subject_id "
        "ORDER BY a.subject_kind, a.subject_id",
    )


@dataclass(frozen=True, slots=True)
class PlatformState:
    """What the platform alerts watch."""

    active: list[tuple[str, str, int]]  # rule, severity, firing or acknowledged alerts
    outbox: list[tuple[str, int, float]]  # channel, undelivered, oldest age (s)
    forecast_age_s: dict[str, float]  # stream: age of its latest run
    database_bytes: int


def platform_state(conn: psycopg.Connection) -> PlatformState:
    """Return active alerts by rule and severity, the outbox backlog per channel, each forecast
    stream's latest run age and the database's size."""
    active = conn.execute(
        "SELECT rule, severity, count(*) FROM alerts WHERE state IN ('firing', 'acknowledged') "
        "GROUP BY 1, 2"
    ).fetchall()
    outbox = conn.execute(
        "SELECT channel, count(*), extract(epoch FROM now() - min(created_at))::float8 "
        "FROM alert_outbox WHERE delivered_at IS NULL GROUP BY 1"
    ).fetchall()
    forecasts = conn.execute(
        "SELECT stream, extract(epoch FROM now() - max(issued_at))::float8 FROM forecast_runs "
        "GROUP BY 1"
    ).fetchall()
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return PlatformState(
        active=[(str(r), str(s), int(n)) for r, s, n in active],
        outbox=[(str(c), int(n), float(age)) for c, n, age in outbox],
        forecast_age_s={str(stream): float(age) for stream, age in forecasts},
        database_bytes=int(size[0]) if size else 0,
    )
