"""Alerts and the database roles: the open feeds never read alerts (device-level ones are not
the public's); the dashboard may acknowledge, but not raise, resolve or erase alerts."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors

from store.roles import ALERTS, ANALYTICS, DASHBOARD, FEEDS
from tests.test_roles import login_as  # noqa: F401 - the fixture

Connect = Callable[[str], psycopg.Connection]


def _denied(conn: psycopg.Connection, statement: str) -> bool:
    try:
        conn.execute(statement)  # type: ignore[arg-type]
    except errors.InsufficientPrivilege:
        return True
    return False


@pytest.mark.parametrize("table", ["alerts", "alert_events", "alert_outbox"])
def test_feeds_cannot_read_alerts(login_as: Connect, table: str) -> None:  # noqa: F811
    with login_as(FEEDS) as conn:
        assert _denied(conn, f"SELECT * FROM {table}")


def test_dashboard_acknowledges_but_cannot_forge_or_erase(
    login_as: Connect,  # noqa: F811
    db: psycopg.Connection,
) -> None:
    db.execute(
        "INSERT INTO alerts (rule, subject_kind, subject_id, severity, audience, state, since, "
        "fired_at) VALUES ('r', 'device', 'd1', 'warning', 'field', 'firing', now(), now())"
    )
    db.commit()
    with login_as(DASHBOARD) as conn:
        from datetime import UTC, datetime

        from store import alerts as store

        alert_id = conn.execute("SELECT alert_id FROM alerts").fetchone()
        assert alert_id is not None
        assert store.acknowledge(conn, alert_id[0], "ana", "on it", datetime.now(UTC))
        assert _denied(
            conn,
            "INSERT INTO alerts (rule, subject_kind, subject_id, severity, audience, state, "
            "since) VALUES ('x', 'lot', 'l', 'info', 'planners', 'firing', now())",
        )
        assert _denied(conn, "DELETE FROM alerts")
        assert _denied(conn, "DELETE FROM alert_events")
        assert _denied(conn, "SELECT * FROM alert_outbox")  # webhook payloads stay private
        assert _denied(conn, "INSERT INTO alert_outbox (channel, created_at, payload, "
                       "next_attempt_at) VALUES ('c', now(), '{}', now())")  # fmt: skip


def test_alerts_service_writes_only_its_own_tables(login_as: Connect) -> None:  # noqa: F811
    with login_as(ALERTS) as conn:
        assert conn.execute("SELECT count(*) FROM device_state").fetchone() == (0,)
        conn.execute(
            "INSERT INTO alert_outbox (channel, created_at, payload, next_attempt_at) "
            "VALUES ('c', now(), '{}', now())"
        )
        assert _denied(conn, "DELETE FROM readings")
        assert _denied(conn, "DELETE FROM forecasts")
        assert _denied(conn, "UPDATE lots SET capacity = 1")
    with login_as(ANALYTICS) as conn:
        assert _denied(conn, "DELETE FROM alerts")  # forecasts cannot erase alert history
