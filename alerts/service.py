"""The alerts service: evaluate the rules every interval, then deliver the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from alerts.delivery import Backoff, deliver
from alerts.engine import run_once
from alerts.rules import RuleSet
from streetsense.config import Settings
from streetsense.errors import ServiceUnavailableError
from streetsense.lifecycle import StopSignal

log = logging.getLogger(__name__)


def now_utc() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def one_round(conn: psycopg.Connection, rules: RuleSet, settings: Settings) -> None:
    """Evaluate once and deliver what is due."""
    run_once(conn, rules, now_utc(), settings.city.timezone)
    result = deliver(conn, rules, settings, now_utc, Backoff(most_s=settings.alerts.retry_max_s))
    if result.sent or result.failed:
        log.info("delivered %d notifications, %d failed", result.sent, result.failed)


def run_forever(
    open_connection: Callable[[], psycopg.Connection],
    rules: RuleSet,
    settings: Settings,
    stop: StopSignal,
) -> None:
    """Run rounds every `alerts.interval_s` until a stop; a lost database is reconnected."""
    conn: psycopg.Connection | None = None
    while not stop.stopping:
        try:
            if conn is None or conn.closed:
                conn = open_connection()
            one_round(conn, rules, settings)
        except (psycopg.OperationalError, ServiceUnavailableError) as exc:
            log.warning("alerts round failed, retrying next interval: %s", exc)
            if conn is not None:
                conn.close()
            conn = None
        if stop.wait(settings.alerts.interval_s):
            break
    if conn is not None:
        conn.close()
    log.info("alerts service stopped")
