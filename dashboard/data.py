"""The dashboard's only data access: one connection pool and bounded, cached store reads.

Every reader takes the database URL first so caches never mix databases, returns a pandas
DataFrame with UTC timestamps, and keeps at most `max_entries` results for `ttl` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
import psycopg
import streamlit as st
from psycopg_pool import ConnectionPool, PoolTimeout

from dashboard import basemap
from store import alerts as alert_store
from store import (
    alerts_reads,
    dashboard_forecasts,
    dashboard_ops,
    dashboard_parking,
    dashboard_reads,
    fleet_devices,
    fleet_enrolment,
    fleet_rollouts,
    lot_status,
)
from store.dashboard_reads import Table
from store.db import describe_url
from streetsense.config import Settings, load_settings
from streetsense.csvcells import text_cell
from streetsense.errors import ConfigError, ServiceUnavailableError
from streetsense.lot_status import StatusOverride
from streetsense.lot_status import lot_status as status_of

# Current state changes every few seconds; history only when a new bucket closes.
NOW_TTL_S: Final = 15
# Live lot counts probe every sensor's newest reading (0.65 s for 2,000 lots, bench/lot_live.py):
# read once per City now refresh.
LIVE_TTL_S: Final = 30
SERIES_TTL_S: Final = 300
REGISTRY_TTL_S: Final = 600
LOW_BATTERY_V: Final = 3.3
# Turnover needs raw spot events; reading at most a day of them keeps long ranges on rollups.
TURNOVER_WINDOW: Final = timedelta(days=1)


def settings() -> Settings:
    """Load the settings of this process (the CLI passes them through the environment)."""
    return load_settings()


def database_url() -> str:
    """Return the configured database URL or stop with the fix."""
    url = settings().database.url
    if not url:
        raise ConfigError(
            "the dashboard needs a database: set STREETSENSE_DATABASE_URL or [database] url"
        )
    return url


def _configure(conn: psycopg.Connection) -> None:
    conn.execute("SET TimeZone TO 'UTC'")
    # The pages' reads are index probes whose plan costs overstate them: JIT compiled 82
    # functions in 190 ms to run lot_live's 650 ms (2,000 lots), and saves nothing.
    conn.execute("SET jit TO off")
    # A planner's page must never hang on one slow query.
    conn.execute("SET statement_timeout TO '30s'")


def _close(released: ConnectionPool) -> None:
    released.close()


@st.cache_resource(show_spinner=False, max_entries=4, on_release=_close)
def pool(url: str) -> ConnectionPool:
    """Return the process-wide connection pool for a database."""
    return ConnectionPool(
        url,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True},
        configure=_configure,
        open=True,
        name="dashboard",
    )


@contextmanager
def _connection(url: str) -> Iterator[psycopg.Connection]:
    """Lend a pooled connection; an unreachable database becomes one clear error."""
    timeout = settings().database.connect_timeout_s
    try:
        with pool(url).connection(timeout=timeout) as conn:
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise ServiceUnavailableError(
            f"the dashboard cannot reach PostgreSQL at {describe_url(url)} ({exc}). Fix: start "
            "the server or point STREETSENSE_DATABASE_URL at a running one; "
            "`streetsense doctor` checks it"
        ) from exc


def _frame(table: Table) -> pd.DataFrame:
    return pd.DataFrame(table.rows, columns=list(table.columns))


def _read(url: str, reader: Callable[..., Table], *args: Any) -> pd.DataFrame:
    with _connection(url) as conn:
        return _frame(reader(conn, *args))


@st.cache_data(ttl=REGISTRY_TTL_S, max_entries=8, show_spinner=False)
def lots(url: str) -> pd.DataFrame:
    """Return the active lots."""
    return _read(url, dashboard_reads.lots)


@st.cache_data(ttl=REGISTRY_TTL_S, max_entries=8, show_spinner=False)
def segments(url: str) -> pd.DataFrame:
    """Return the active segments."""
    return _read(url, dashboard_reads.segments)


@st.cache_data(ttl=LIVE_TTL_S, max_entries=8, show_spinner=False)
def lots_now(url: str) -> pd.DataFrame:
    """Return every lot with its live occupancy (as the open feeds count it)."""
    return _read(url, dashboard_reads.lots_now)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def segments_now(url: str) -> pd.DataFrame:
    """Return every segment with its latest 5-minute bucket."""
    return _read(url, dashboard_reads.segments_now)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def city_kpis(url: str) -> dict[str, float]:
    """Return the city-wide figures of the City now page."""
    with _connection(url) as conn:
        return dashboard_reads.city_kpis(conn)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=64, show_spinner=False)
def occupancy(
    url: str, lot_ids: tuple[str, ...], start: datetime, end: datetime, tier: str
) -> pd.DataFrame:
    """Return occupancy series of some lots."""
    return _read(url, dashboard_reads.occupancy_series, list(lot_ids), start, end, tier)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=64, show_spinner=False)
def flow(
    url: str, segment_ids: tuple[str, ...], start: datetime, end: datetime, tier: str
) -> pd.DataFrame:
    """Return flow and speed series of some segments."""
    return _read(url, dashboard_reads.flow_series, list(segment_ids), start, end, tier)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=32, show_spinner=False)
def hour_of_week(
    url: str, lot_ids: tuple[str, ...], start: datetime, end: datetime, timezone: str
) -> pd.DataFrame:
    """Return mean occupancy by local weekday and hour."""
    return _read(url, dashboard_reads.occupancy_hour_of_week, list(lot_ids), start, end, timezone)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=32, show_spinner=False)
def time_above(
    url: str, lot_ids: tuple[str, ...], start: datetime, end: datetime, threshold: float
) -> pd.DataFrame:
    """Return the share of time each lot spent at or above a threshold."""
    return _read(url, dashboard_reads.time_above, list(lot_ids), start, end, threshold)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=32, show_spinner=False)
def turnover(url: str, lot_ids: tuple[str, ...], start: datetime, end: datetime) -> pd.DataFrame:
    """Return arrivals, turnover per spot and day, and mean dwell per lot."""
    frame = _read(url, dashboard_ops.spot_turnover, list(lot_ids), start, end)
    days = (end - start).total_seconds() / 86_400
    spots = frame["spots"].where(frame["spots"] > 0)
    frame["turnover_per_spot_day"] = frame["arrivals"] / spots / days
    return frame


@st.cache_data(ttl=SERIES_TTL_S, max_entries=32, show_spinner=False)
def peak_profile(
    url: str, segment_ids: tuple[str, ...], start: datetime, end: datetime, timezone: str
) -> pd.DataFrame:
    """Return the mean hourly flow by local hour for weekdays and weekends."""
    return _read(url, dashboard_reads.flow_peak_profile, list(segment_ids), start, end, timezone)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=32, show_spinner=False)
def congestion(url: str, start: datetime, end: datetime, tier: str, limit: int) -> pd.DataFrame:
    """Return the segments ranked by time spent congested."""
    return _read(url, dashboard_reads.congestion_ranking, start, end, tier, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def device_summary(url: str) -> dict[str, int]:
    """Return device counts by health."""
    with _connection(url) as conn:
        return dashboard_ops.device_summary(conn, LOW_BATTERY_V)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def device_health(url: str, limit: int) -> pd.DataFrame:
    """Return the devices with their health."""
    return _read(url, dashboard_ops.device_health, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def quarantine(url: str, limit: int) -> pd.DataFrame:
    """Return the devices whose messages wait in quarantine."""
    return _read(url, dashboard_ops.quarantine_summary, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def rejections(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Return rejected messages counted by reason."""
    return _read(url, dashboard_ops.rejections_by_reason, start, end)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def rejection_examples(
    url: str, reason_code: str, start: datetime, end: datetime, limit: int
) -> pd.DataFrame:
    """Return the latest rejected messages of one reason, payloads as text."""
    frame = _read(url, dashboard_ops.rejection_examples, reason_code, start, end, limit)
    frame["payload"] = [bytes(p).decode("utf-8", "replace") for p in frame["payload"]]
    # What a device sent is shown as text, and stays text in the table's CSV download.
    for column in ("topic", "device_id", "reason", "payload"):
        frame[column] = frame[column].map(text_cell, na_action="ignore")
    return frame


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def freshness(url: str) -> pd.DataFrame:
    """Return the age of the latest data of every lot and segment."""
    return _read(url, dashboard_ops.freshness)


@st.cache_data(ttl=LIVE_TTL_S, max_entries=64, show_spinner=False)
def forecast(
    url: str, stream: str, series_ids: tuple[str, ...], start: datetime, end: datetime
) -> pd.DataFrame:
    """Return the latest forecast of some series re-anchored on their live values (a lot's
    count now, a segment's latest 5-minute bucket), flow in vehicles per hour."""
    stale_after = timedelta(seconds=settings().feeds.stale_after_s)
    frame = _read(url, dashboard_forecasts.forecast_series, stream, list(series_ids), start, end,
                  stale_after)  # fmt: skip
    if stream == "flow" and not frame.empty:
        per_hour = 3600.0 / frame["step_seconds"]
        frame[["yhat", "lo80", "hi80"]] = frame[["yhat", "lo80", "hi80"]].mul(per_hour, axis=0)
    return frame


@st.cache_data(ttl=LIVE_TTL_S, max_entries=16, show_spinner=False)
def forecast_skips(url: str, stream: str, series_ids: tuple[str, ...]) -> pd.DataFrame:
    """Return why the stream's latest run left some of these series without a forecast."""
    return _read(url, dashboard_forecasts.forecast_skips, stream, list(series_ids))


@st.cache_data(ttl=SERIES_TTL_S, max_entries=8, show_spinner=False)
def backtests(url: str, stream: str) -> pd.DataFrame:
    """Return the backtest scores of the stream's latest run that has them."""
    return _read(url, dashboard_forecasts.backtest_scores, stream)


@st.cache_data(ttl=SERIES_TTL_S, max_entries=8, show_spinner=False)
def chosen_models(url: str, stream: str) -> pd.DataFrame:
    """Return the model chosen for each series by the stream's latest run."""
    return _read(url, dashboard_forecasts.chosen_models, stream)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def active_alerts(url: str, limit: int) -> pd.DataFrame:
    """Return firing and acknowledged alerts, firing and most severe first."""
    return _read(url, alerts_reads.active, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def alert_history(url: str, limit: int, since: datetime) -> pd.DataFrame:
    """Return alerts that fired since a time, newest first."""
    return _read(url, alerts_reads.history, limit, since)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def alert_rule_counts(url: str, since: datetime) -> pd.DataFrame:
    """Return per rule the alerts fired, active, acknowledged and their mean time open."""
    return _read(url, alerts_reads.rule_counts, since)


@st.cache_data(ttl=NOW_TTL_S, max_entries=64, show_spinner=False)
def alert_events(url: str, alert_id: int) -> pd.DataFrame:
    """Return one alert's transitions."""
    return _read(url, alerts_reads.events, alert_id)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def alerts_on_map(url: str) -> pd.DataFrame:
    """Return the places (lots, segments) with active alerts and their position."""
    return _read(url, alerts_reads.on_map)


def acknowledge(url: str, alert_id: int, by: str, note: str, at: datetime) -> bool:
    """Acknowledge an alert (not cached); return False when it was no longer firing."""
    with _connection(url) as conn:
        done = alert_store.acknowledge(conn, alert_id, by, note, at)
    for reader in (active_alerts, alert_history, alert_rule_counts, alert_events, alerts_on_map):
        reader.clear()
    return done


def page_context() -> tuple[str, Settings]:
    """Return the database URL and settings every page starts from."""
    current = settings()
    return database_url(), current


# --- Opening status, categories and the operator's override (Parking page) ---


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def lot_details(url: str, lot_ids: tuple[str, ...]) -> pd.DataFrame:
    """Return the opening hours and category capacities of some lots."""
    return _read(url, dashboard_parking.lot_details, list(lot_ids))


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def category_now(url: str, lot_ids: tuple[str, ...]) -> pd.DataFrame:
    """Return the spaces taken now per lot and spot category."""
    return _read(url, dashboard_parking.category_now, list(lot_ids))


def overrides(url: str) -> dict[str, StatusOverride]:
    """Return the operators' overrides (not cached: an operator sees their change at once)."""
    with _connection(url) as conn:
        return lot_status.read_overrides(conn)


def override_audit(url: str, limit: int) -> pd.DataFrame:
    """Return the latest override changes, newest first."""
    return _read(url, lot_status.audit_log, None, limit)


def set_override(url: str, override: StatusOverride) -> None:
    """Record an operator's override from the dashboard (audited with who and when)."""
    with _connection(url) as conn:
        lot_status.set_override(conn, override, "dashboard")


def clear_override(url: str, lot_id: str, actor: str, reason: str, at: datetime) -> None:
    """Drop a lot's override from the dashboard (audited)."""
    with _connection(url) as conn:
        lot_status.clear_override(conn, lot_id, actor, reason, "dashboard", at)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def closed_lots(url: str, timezone: str, country: str) -> frozenset[str]:
    """Return the lots closed now, by their opening hours or an operator's override."""
    now = datetime.now(UTC)
    with _connection(url) as conn:
        hours, found = lot_status.lot_hours(conn), lot_status.read_overrides(conn)
    return frozenset(
        lot_id
        for lot_id, _, rule in hours
        if status_of(rule, found.get(lot_id), now, timezone, country).status.value == "closed"
    )


@st.cache_data(ttl=REGISTRY_TTL_S, max_entries=4, show_spinner=False)
def map_style_answers(url: str) -> bool:
    """Tell whether the base map's style answers from this host (checked every 10 minutes)."""
    return basemap.style_answers(url)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def live_counts(url: str, lot_ids: tuple[str, ...]) -> pd.DataFrame:
    """Return some lots' live counts by gate counter and by spot sensors."""
    return _read(url, dashboard_parking.live_counts, list(lot_ids))


# --- The fleet: enrolments, devices' releases and credentials, rollouts, queued actions ---


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def fleet_devices_view(url: str, limit: int) -> pd.DataFrame:
    """Return enrolled devices: release, config, credential life, health, latest rollout."""
    return _read(url, fleet_devices.fleet_view, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def pending_enrolments(url: str, limit: int) -> pd.DataFrame:
    """Return serials waiting for an operator (or approved, not yet enrolled)."""
    return _read(url, fleet_enrolment.enrolments, ("pending", "approved"), limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=8, show_spinner=False)
def rollouts(url: str, limit: int) -> pd.DataFrame:
    """Return the latest rollouts with their device counts."""
    return _read(url, fleet_rollouts.rollouts, limit)


@st.cache_data(ttl=NOW_TTL_S, max_entries=16, show_spinner=False)
def rollout_progress(url: str, rollout_id: int) -> pd.DataFrame:
    """Return each device's progress in one rollout."""
    return _read(url, fleet_rollouts.progress, rollout_id)


def fleet_audit(url: str, limit: int) -> pd.DataFrame:
    """Return the fleet's audit log, newest first (not cached: actions show at once)."""
    return _read(url, fleet_devices.audit_log, limit, None)


def fleet_actions(url: str, limit: int) -> pd.DataFrame:
    """Return the latest queued actions and their outcomes (not cached)."""
    return _read(url, fleet_devices.recent_actions, limit)


def queue_fleet_action(url: str, action: str, subject: str, by: str, args: dict[str, Any]) -> int:
    """Queue an operator's decision for the fleet service; return its id."""
    with _connection(url) as conn:
        action_id = fleet_devices.queue_action(conn, action, subject, by, datetime.now(UTC), args)
    for reader in (fleet_devices_view, pending_enrolments, rollouts, rollout_progress):
        reader.clear()
    return action_id
