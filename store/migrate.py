"""Versioned, idempotent schema migrations: `store/migrations/mNNN_<name>.py`, applied in order.

Each migration module defines `upgrade(conn, caps, settings) -> None`. Rooms own number
ranges so they never collide: 001-009 core/ingest, 010-019 analytics, 020-029 feeds,
030-039 dashboard, 040-049 security and reliability.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import psycopg

from store import migrations
from store.db import Capabilities, detect_capabilities
from store.roles import apply_grants
from streetsense.config import DatabaseSettings

log = logging.getLogger(__name__)
_NAME_RE = re.compile(r"m(\d{3})_(\w+)\Z")
# Any constant works; it only has to be the same in every process that migrates.
_LOCK_KEY = 7_355_108_001


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    module: ModuleType


def available_migrations() -> list[Migration]:
    """Return every migration shipped with this release, in version order."""
    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        match = _NAME_RE.match(info.name)
        if match:
            module = importlib.import_module(f"{migrations.__name__}.{info.name}")
            found.append(Migration(int(match[1]), match[2], module))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"two migrations share a version number: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


def applied_versions(conn: psycopg.Connection) -> set[int]:
    """Return the versions already applied (empty for a new database)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}


def migrate(conn: psycopg.Connection, settings: DatabaseSettings) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; safe to run concurrently.

    Returns:
        The migrations applied by this call (empty when the schema was current).
    """
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        # Chosen under the lock: a concurrent migrate may be creating the schema right now.
        caps = detect_capabilities(conn, settings)
        log_backend(caps)
        if caps.create_extension:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = applied_versions(conn)
        applied = []
        for migration in available_migrations():
            if migration.version in done:
                continue
            log.info(
                "applying migration %03d %s (%s)", migration.version, migration.name, caps.backend
            )
            _apply(conn, migration, caps, settings)
            applied.append(migration)
        if applied:
            apply_grants(conn)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def log_backend(caps: Capabilities) -> None:
    """Log which backend the schema uses and why; a warning when TimescaleDB is left unused."""
    level = logging.WARNING if caps.unused_timescale else logging.INFO
    log.log(level, "storage backend: %s, because %s", caps.backend, caps.reason)


def _apply(
    conn: psycopg.Connection, migration: Migration, caps: Capabilities, settings: DatabaseSettings
) -> None:
    # TimescaleDB refuses some DDL (continuous aggregates) inside a transaction block, so a
    # migration may declare NON_TRANSACTIONAL and then must be idempotent by itself.
    if getattr(migration.module, "NON_TRANSACTIONAL", False):
        migration.module.upgrade(conn, caps, settings)
        _record(conn, migration)
        return
    with conn.transaction():
        migration.module.upgrade(conn, caps, settings)
        _record(conn, migration)


def _record(conn: psycopg.Connection, migration: Migration) -> None:
    conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (migration.version, migration.name),
    )


def schema_version(conn: psycopg.Connection) -> int:
    """Return the highest applied migration version, 0 for an empty database."""
    return max(applied_versions(conn), default=0)
