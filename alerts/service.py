"""The alerts service: refresh the rollups, evaluate the rules, deliver the outbox, export
metrics; every `alerts.interval_s` until SIGINT/SIGTERM.

The service refreshes the rollups itself (incremental, and serialised with the analytics job's
refresh by the rollups' own lock), so an interval's data is judged within one alerts interval
of arriving, not only after the forecast job's next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from alerts.delivery import Backoff, deliver
from alerts.engine import run_once
from alerts.metrics import AlertsMetrics
from alerts.rules import RuleSet
from store import rollups
from streetsense.config import Settings
from streetsense.errors import ServiceUnavailableError
from streetsense.lifecycle import StopSignal

log = logging.getLogger(__name__)


def now_utc() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def one_round(
    conn: psycopg.Connection,
    rules: RuleSet,
    settings: Settings,
    metrics: AlertsMetrics | None = None,
    last_run: dict[str, datetime] | None = None,
) -> None:
    """Refresh the rollups, evaluate the rules that are due and deliver what is due
    (autocommit connection); `last_run` is kept between rounds (run_once)."""
    rollups.refresh(conn, settings)
    report = run_once(conn, rules, now_utc(), settings.city.timezone, last_run)
    result = deliver(conn, rules, settings, now_utc, Backoff(most_s=settings.alerts.retry_max_s))
    if result.sent or result.failed:
        log.info("delivered %d notifications, %d failed", result.sent, result.failed)
    if metrics is not None:
        metrics.record_round(conn, report)
        metrics.record_delivery(result.by_channel, result.failed)


def run_forever(
    open_connection: Callable[[], psycopg.Connection],
    rules: RuleSet,
    settings: Settings,
    stop: StopSignal,
) -> None:
    """Run rounds every `alerts.interval_s` until a stop; a lost database is reconnected."""
    metrics = AlertsMetrics()
    metrics.serve(settings.alerts.metrics_host, settings.alerts.metrics_port)
    conn: psycopg.Connection | None = None
    last_run: dict[str, datetime] = {}
    try:
        while not stop.stopping:
            try:
                if conn is None or conn.closed:
                    conn = open_connection()
                one_round(conn, rules, settings, metrics, last_run)
            except (psycopg.OperationalError, ServiceUnavailableError) as exc:
                metrics.failures.inc()
                log.warning("alerts round failed, retrying next interval: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
            if stop.wait(settings.alerts.interval_s):
                break
    finally:
        if conn is not None:
            conn.close()
        metrics.close()
    log.info("alerts service stopped")
