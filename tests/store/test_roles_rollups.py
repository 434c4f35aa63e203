"""The analytics service role can refresh the rollups; the feeds role can read them; ingest
notes late commits that only the refresh may consume."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors, sql

from store.roles import ANALYTICS, DASHBOARD, FEEDS, INGEST
from store.rollups import refresh
from streetsense.config import Settings
from tests.store.support import at, load_city, spot, write
from tests.store.test_late_commit import commit_stalled, refreshed_before_the_commit


@contextmanager
def login(db: psycopg.Connection, database_url: str, group: str) -> Iterator[psycopg.Connection]:
    """Connect as a new login user of a service role; drop it afterwards."""
    user = f"ss_user_{uuid.uuid4().hex[:10]}"
    db.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
        sql.Identifier(user), sql.Identifier(group)))  # fmt: skip
    db.commit()
    try:
        with psycopg.connect(psycopg.conninfo.make_conninfo(database_url, user=user)) as conn:
            yield conn
    finally:
        db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
        db.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
        db.commit()


def test_analytics_refreshes_and_feeds_read(
    db: psycopg.Connection, database_url: str, settings: Settings
) -> None:
    load_city(db)
    write(db, [spot("s1", 0, True)])
    with login(db, database_url, ANALYTICS) as conn:
        assert refresh(conn, settings, until=at(10)).lots == 1
    with login(db, database_url, FEEDS) as conn:
        assert conn.execute("SELECT occupied FROM lot_now").fetchall() == [(1.0,)]
        assert conn.execute("SELECT count(*) FROM segment_now").fetchone() == (0,)


def test_ingest_notes_late_commits_and_analytics_consumes_them(
    db: psycopg.Connection, database_url: str, settings: Settings
) -> None:
    refreshed_before_the_commit(db, settings)
    with login(db, database_url, INGEST) as conn:
        commit_stalled(conn, noted=True)
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute("DELETE FROM rollup_invalidations")
    for reader in (DASHBOARD, FEEDS):
        with login(db, database_url, reader) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM rollup_invalidations")
    with login(db, database_url, ANALYTICS) as conn:
        refresh(conn, settings, until=at(30))
        assert conn.execute("SELECT count(*) FROM rollup_invalidations").fetchone() == (0,)
        occupied = conn.execute(
            "SELECT occupied FROM occupancy_5m WHERE lot_id = 'market' AND bucket = %s", (at(5),)
        ).fetchone()
        assert occupied == (2.0,)  # the stalled batch's second car is counted
