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
def scratch_database(prefix: str = "ss_bench") -> Iterator[str]:
    """Create a migrated scratch database; yield its URL; drop it afterwards."""
    admin = database_admin_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    try:
        with psycopg.connect(url) as conn:
            migrate(conn, DatabaseSettings(timescale="off"))
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
