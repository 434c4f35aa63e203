"""Connections to PostgreSQL/TimescaleDB, with errors that say what to fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from store.backend import POSTGRESQL, TIMESCALE, choose_backend, read_timescale_facts
from streetsense.config import DatabaseSettings
from streetsense.errors import ConfigError, ServiceUnavailableError

log = logging.getLogger(__name__)


def describe_url(url: str) -> str:
    """Return hosts, ports and database of a libpq URL, without the password.

    A multi-host URL (`postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write`, for
    a primary that fails over) reads `h1:5432,h2:5433/db (read-write)`: libpq keeps hosts
    and ports in two lists, which would otherwise print as `h1,h2:5432,5433`.
    """
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"database url is not a valid libpq URL: {exc}") from exc
    hosts = str(parts.get("host") or parts.get("hostaddr") or "local socket").split(",")
    ports = str(parts.get("port") or "5432").split(",")
    if len(ports) == 1:
        ports *= len(hosts)  # libpq: one port for every host
    nodes = ",".join(
        f"{host or 'local socket'}:{port or 5432}"
        for host, port in zip(hosts, ports + [""] * len(hosts), strict=False)
    )
    database = parts.get("dbname") or parts.get("user") or ""
    attrs = parts.get("target_session_attrs")
    return f"{nodes}/{database}" + (f" ({attrs})" if attrs and attrs != "any" else "")


def require_url(settings: DatabaseSettings) -> str:
    """Return the configured database URL or explain how to set one."""
    if not settings.url:
        raise ConfigError(
            "no database configured: set STREETSENSE_DATABASE_URL (for example "
            "postgresql://postgres@127.0.0.1:5432/streetsense) or [database] url in "
            "streetsense.toml; `streetsense demo` starts a private one instead"
        )
    return settings.url


def connect(
    url: str,
    *,
    autocommit: bool = False,
    timeout_s: float = 5.0,
    application_name: str | None = None,
) -> psycopg.Connection:
    """Open one connection, converting failures into ServiceUnavailableError with the fix.

    `application_name` names the connection in pg_stat_activity (unless the URL names it).
    """
    try:
        conninfo = url
        if application_name and "application_name" not in conninfo_to_dict(url):
            conninfo = make_conninfo(url, application_name=application_name)
        return psycopg.connect(
            conninfo, autocommit=autocommit, connect_timeout=max(1, int(timeout_s))
        )
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailableError(
            f"cannot reach PostgreSQL at {describe_url(url)}: {first_line}. Fix: start the "
            "server (pg_ctlcluster --skip-systemctl-redirect <version> main start) or point "
            "STREETSENSE_DATABASE_URL at a running one; `streetsense doctor` checks it"
        ) from exc


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server offers that the schema adapts to."""

    timescale: bool
    server_version: int
    reason: str = ""  # why this backend: shown by `db migrate`, `db status` and `doctor`
    create_extension: bool = False  # TimescaleDB is to be created in this database first
    unused_timescale: bool = False  # the server has TimescaleDB, the schema does not use it

    @property
    def backend(self) -> str:
        """Name the storage backend for logs and `doctor`."""
        return TIMESCALE if self.timescale else POSTGRESQL


def detect_capabilities(conn: psycopg.Connection, settings: DatabaseSettings) -> Capabilities:
    """Choose the backend from the server's state and `database.timescale`; changes nothing.

    Raises:
        ConfigError: the setting cannot be honoured on this server (the message says why and
            what to change), e.g. `timescale = "on"` where TimescaleDB is not preloaded.
    """
    choice = choose_backend(settings.timescale, read_timescale_facts(conn))
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    return Capabilities(
        timescale=choice.timescale,
        server_version=int(row[0]) if row else 0,
        reason=choice.reason,
        create_extension=choice.create_extension,
        unused_timescale=choice.unused_timescale,
    )
