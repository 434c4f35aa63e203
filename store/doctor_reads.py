"""Read-only facts about the database for `streetsense doctor` (catalog queries only)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# table -> privilege the services need on it, once the schema exists
NEEDED_PRIVILEGES: dict[str, str] = {
    "readings": "INSERT",
    "rejected_messages": "INSERT",
    "rollup_invalidations": "INSERT",  # ingest notes late commits there
    "lots": "SELECT",
    "schema_migrations": "SELECT",
}


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """Who we are on which server."""

    version: str
    version_num: int
    user: str
    database: str
    superuser: bool


def server_facts(conn: psycopg.Connection) -> ServerFacts:
    """Return the server version, current user and database."""
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int,"
        " current_user, current_database(),"
        " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return ServerFacts(str(row[0]), int(row[1]), str(row[2]), str(row[3]), bool(row[4]))


def can_create_in_public(conn: psycopg.Connection) -> bool:
    """Tell whether the current user may create tables in schema public (for migrations)."""
    row = conn.execute("SELECT has_schema_privilege(current_user, 'public', 'CREATE')").fetchone()
    return bool(row and row[0])


def missing_privileges(conn: psycopg.Connection) -> list[str]:
    """Return `PRIVILEGE on table` for each needed privilege the current user lacks."""
    missing = []
    for table, privilege in NEEDED_PRIVILEGES.items():
        row = conn.execute(
            "SELECT to_regclass(%s) IS NULL"
            " OR has_table_privilege(current_user, to_regclass(%s), %s)",
            (table, table, privilege),
        ).fetchone()
        if not (row and row[0]):
            missing.append(f"{privilege} on {table}")
    return missing


def ingest_connections(conn: psycopg.Connection, name_prefix: str) -> list[str]:
    """Return the application names of this database's connections whose name starts so."""
    rows = conn.execute(
        "SELECT application_name FROM pg_stat_activity"
        " WHERE datname = current_database() AND starts_with(application_name, %s)"
        " ORDER BY application_name",
        (name_prefix,),
    ).fetchall()
    return [str(row[0]) for row in rows]
