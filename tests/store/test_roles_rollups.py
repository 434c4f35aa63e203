"""The analytics service role can refresh the rollups; the feeds role can read them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from store.roles import ANALYTICS, FEEDS
from store.rollups import refresh
from streetsense.config import Settings
from tests.store.support import at, load_city, spot, write


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
