"""Which storage backend a database gets: TimescaleDB or plain PostgreSQL, and why.

The facts are read from the server's catalogs and settings and never changed here; the choice
is a pure function of them and of `database.timescale`, so every path of it can be checked
without TimescaleDB's binaries and `streetsense doctor` says exactly what `db migrate` would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg

from streetsense.errors import ConfigError

TIMESCALE: Final = "TimescaleDB"
POSTGRESQL: Final = "PostgreSQL"
MODES: Final = ("auto", "on", "off")
# Defined by TimescaleDB's loader, which only runs when the server preloads it; a placeholder
# set by hand (SET timescaledb.disable_load ...) never shows in pg_settings.
_LOADER_SETTING: Final = "timescaledb.disable_load"
_PRELOAD_FIX: Final = (
    "add 'timescaledb' to shared_preload_libraries in postgresql.conf and restart PostgreSQL"
)


@dataclass(frozen=True, slots=True)
class TimescaleFacts:
    """What the server and this database say about TimescaleDB."""

    installed: str | None  # extension version created in this database
    available: str | None  # version the server could create (its control file is installed)
    loaded: bool  # TimescaleDB's loader runs: the server preloaded the library at start
    preload: str  # shared_preload_libraries as the server runs with it
    preload_pending: bool  # shared_preload_libraries was edited and waits for a restart
    schema: str | None  # backend of an existing schema (TIMESCALE, POSTGRESQL), None if new

    @property
    def version(self) -> str | None:
        """Return the installed version, else the one the server offers."""
        return self.installed or self.available

    def describe_preload(self) -> str:
        """Return shared_preload_libraries, quoted, with a pending edit noted."""
        pending = ", edited and waiting for a restart" if self.preload_pending else ""
        return f"shared_preload_libraries = '{self.preload}'{pending}"


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """The backend to use, whether the extension must be created first, and why."""

    timescale: bool
    create_extension: bool
    reason: str
    unused_timescale: bool = False  # the server has TimescaleDB, the schema does not use it

    @property
    def backend(self) -> str:
        """Name the backend for logs and `doctor`."""
        return TIMESCALE if self.timescale else POSTGRESQL


def read_timescale_facts(conn: psycopg.Connection) -> TimescaleFacts:
    """Read TimescaleDB's state from the catalogs; calls none of its functions."""
    row = conn.execute(
        "SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),"
        " (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'),"
        " EXISTS (SELECT 1 FROM pg_settings WHERE name = %s),"
        " (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'),"
        " (SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'),"
        " to_regclass('readings') IS NOT NULL",
        (_LOADER_SETTING,),
    ).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    installed, available, loaded, preload, pending, has_readings = row
    schema = None
    if has_readings:
        schema = TIMESCALE if installed and _readings_is_hypertable(conn) else POSTGRESQL
    return TimescaleFacts(
        installed=installed,
        available=available,
        loaded=bool(loaded),
        preload=preload or "",
        preload_pending=bool(pending),
        schema=schema,
    )


def _readings_is_hypertable(conn: psycopg.Connection) -> bool:
    # TimescaleDB's own catalog table: readable even when its library cannot be loaded.
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM _timescaledb_catalog.hypertable h"
        " WHERE to_regclass(format('%I.%I', h.schema_name, h.table_name))"
        " = to_regclass('readings'))"
    ).fetchone()
    return bool(row and row[0])


def choose_backend(mode: str, facts: TimescaleFacts) -> BackendChoice:
    """Choose the backend for `database.timescale = mode` on a server in this state.

    An existing schema keeps the backend it was created with. A new one uses TimescaleDB when
    the server can run it ("auto") or must ("on").

    Raises:
        ConfigError: the mode is unknown, or cannot be honoured; the message names the fix.
    """
    mode = mode.lower()
    if mode not in MODES:
        raise ConfigError(f"database.timescale = {mode!r} must be auto, on or off")
    if facts.schema == TIMESCALE:
        return _timescale_schema(mode, facts)
    if facts.schema == POSTGRESQL:
        return _plain_schema(mode, facts)
    return _new_schema(mode, facts)


def _timescale_schema(mode: str, facts: TimescaleFacts) -> BackendChoice:
    if not facts.loaded:
        raise ConfigError(
            f"the schema uses TimescaleDB {facts.installed} but the server does not preload it"
            f" ({facts.describe_preload()}): {_PRELOAD_FIX}"
        )
    if mode == "off":
        raise ConfigError(
            "database.timescale = 'off' but the schema uses TimescaleDB (hypertables do not turn"
            " into plain tables): set STREETSENSE_DATABASE_TIMESCALE=auto"
        )
    return BackendChoice(True, False, f"the schema uses TimescaleDB {facts.installed}")


def _plain_schema(mode: str, facts: TimescaleFacts) -> BackendChoice:
    if mode == "on":
        raise ConfigError(
            "database.timescale = 'on' but the schema was created on plain PostgreSQL and is not"
            " converted: set STREETSENSE_DATABASE_TIMESCALE=auto, or migrate a new database and"
            " move the data (docs/deploy.md, 'TimescaleDB')"
        )
    reason = "the schema was created on plain PostgreSQL"
    if mode == "off":
        reason += " (database.timescale = off)"
        return BackendChoice(False, False, reason)
    if facts.version:
        usable = (
            "usable now"
            if facts.loaded
            else f"installed, not preloaded ({facts.describe_preload()})"
        )
        reason += (
            f"; TimescaleDB {facts.version} is {usable}, but an existing schema is not"
            " converted (docs/deploy.md, 'TimescaleDB')"
        )
        return BackendChoice(False, False, reason, unused_timescale=True)
    return BackendChoice(False, False, reason)


def _new_schema(mode: str, facts: TimescaleFacts) -> BackendChoice:
    if mode == "off":
        return BackendChoice(False, False, "database.timescale = off")
    if facts.version is None:
        if mode == "on":
            raise ConfigError(
                "database.timescale = 'on' but this server has no TimescaleDB extension: install"
                " it (docs/deploy.md, 'TimescaleDB'), or set STREETSENSE_DATABASE_TIMESCALE=auto"
                " to use plain PostgreSQL"
            )
        return BackendChoice(False, False, "TimescaleDB is not installed on this server")
    if not facts.loaded:
        if mode == "on":
            raise ConfigError(
                f"database.timescale = 'on' but TimescaleDB {facts.version} is installed and not"
                f" preloaded ({facts.describe_preload()}): {_PRELOAD_FIX}; or set"
                " STREETSENSE_DATABASE_TIMESCALE=auto to use plain PostgreSQL"
            )
        return BackendChoice(
            False,
            False,
            f"TimescaleDB {facts.version} is installed on the server but not preloaded"
            f" ({facts.describe_preload()}); to use it, {_PRELOAD_FIX} before the first migrate",
            unused_timescale=True,
        )
    if facts.installed:
        return BackendChoice(True, False, f"TimescaleDB {facts.installed} is installed")
    return BackendChoice(True, True, f"TimescaleDB {facts.version} is preloaded")
