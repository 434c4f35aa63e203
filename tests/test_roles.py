"""Database roles: ingest writes raw data only; dashboard and feeds only read; feeds never
read refused payloads, quarantine or device health."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, sql

from store.roles import ANALYTICS, DASHBOARD, FEEDS, INGEST


@pytest.fixture
def login_as(database_url: str, db: psycopg.Connection) -> Iterator[object]:
    """Create a login user in a service role and return a connector for it."""
    created: list[str] = []

    def connect(group: str) -> psycopg.Connection:
        user = f"ss_user_{uuid.uuid4().hex[:10]}"
        db.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
            sql.Identifier(user), sql.Identifier(group)))  # fmt: skip
        db.commit()
        created.append(user)
        return psycopg.connect(psycopg.conninfo.make_conninfo(database_url, user=user),
                               autocommit=True)  # fmt: skip

    yield connect
    for user in created:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        db.commit()


INSERT_READING = (
    "INSERT INTO readings (device_id, kind, observed_at, received_at, value) "
    "VALUES ('d', 'battery', now(), now(), 3.3)"
)


def _denied(conn: psycopg.Connection, statement: str) -> bool:
    try:
        conn.execute(statement)  # type: ignore[arg-type]
    except errors.InsufficientPrivilege:
        return True
    return False


def test_ingest_writes_raw_data_only(login_as) -> None:  # type: ignore[no-untyped-def]
    with login_as(INGEST) as conn:
        conn.execute(INSERT_READING)
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        assert _denied(conn, "DELETE FROM readings")
        # A revision replaces a reading's value (store.revisions), never what identifies it.
        conn.execute("UPDATE readings SET value = 0, revision = 1, received_at = now()")
        assert _denied(conn, "UPDATE readings SET device_id = 'other'")
        assert _denied(conn, "UPDATE readings SET observed_at = now()")
        assert _denied(conn, "UPDATE lots SET capacity = 1")
        assert _denied(conn, "DELETE FROM forecasts")


def test_dashboard_only_reads(login_as) -> None:  # type: ignore[no-untyped-def]
    with login_as(DASHBOARD) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM device_state").fetchone() == (0,)
        assert _denied(conn, "SELECT * FROM rollup_invalidations")  # ingest-refresh bookkeeping
        assert _denied(conn, INSERT_READING)
        assert _denied(conn, "DELETE FROM lots")


def test_feeds_read_aggregates_but_never_device_health(login_as) -> None:  # type: ignore[no-untyped-def]
    with login_as(FEEDS) as conn:
        assert conn.execute("SELECT count(*) FROM lots").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM lot_now").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM occupancy_5m").fetchone() == (0,)
        for private in (
            "device_state",
            "device_sequences",
            "rejected_messages",
            "quarantine",
            "readings_located",
            "rollup_invalidations",
        ):
            assert _denied(conn, f"SELECT * FROM {private}"), private
        assert _denied(conn, "DELETE FROM lots")


def test_analytics_writes_derived_data_but_not_raw(login_as) -> None:  # type: ignore[no-untyped-def]
    with login_as(ANALYTICS) as conn:
        conn.execute("DELETE FROM forecasts")
        conn.execute("DELETE FROM occupancy_5m")
        assert _denied(conn, "DELETE FROM readings")
        assert _denied(conn, INSERT_READING)
        assert _denied(conn, "UPDATE lots SET capacity = 1")


@pytest.mark.parametrize("role", [ANALYTICS, DASHBOARD, FEEDS])
def test_only_ingest_reads_the_confirmation_secret(login_as, role: str) -> None:  # type: ignore[no-untyped-def]
    # whoever reads it can forge the acks that delete data from devices' buffers
    with login_as(INGEST) as conn:
        assert conn.execute("SELECT octet_length(secret) FROM confirm_secret").fetchone() == (32,)
    with login_as(role) as conn:
        assert _denied(conn, "SELECT secret FROM confirm_secret")
        assert _denied(conn, "UPDATE confirm_secret SET secret = secret")
