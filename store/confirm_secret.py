"""The city's confirmation secret (streetsense.confirm), read by ingest and the key command."""

from __future__ import annotations

import psycopg

from streetsense.errors import ConfigError


def read_confirm_secret(conn: psycopg.Connection) -> bytes:
    """Return the secret ingest signs acks with.

    Raises:
        ConfigError: the schema predates it, or this role may not read it.
    """
    try:
        row = conn.execute("SELECT secret FROM confirm_secret").fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InsufficientPrivilege) as exc:
        raise ConfigError(
            f"cannot read the confirmation secret ({str(exc).splitlines()[0]}); run "
            "`streetsense db migrate`, and use the database role of ingest (streetsense_ingest)"
        ) from exc
    if row is None:
        raise ConfigError("the confirmation secret is missing: run `streetsense db migrate`")
    return bytes(row[0])
