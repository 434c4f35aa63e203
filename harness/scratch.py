"""A scratch database on the test server for bench runs (tests use the `database_url` fixture)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from harness.services import database_admin_url
from store.migrate import migrate
from streetsense.config import DatabaseSettings


@contextmanager
def empty_database(admin_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database on the server of admin_url; yield its URL; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def scratch_database(
    prefix: str = "ss_bench", *, admin_url: str | None = None, timescale: str = "off"
) -> Iterator[str]:
    """Create a migrated scratch database; yield its URL; drop it afterwards.

    The server is admin_url's (default: the test server); `timescale` is database.timescale.
    """
    with empty_database(admin_url or database_admin_url(), prefix) as url:
        with psycopg.connect(url) as conn:
            migrate(conn, DatabaseSettings(timescale=timescale))
        yield url
