"""The registry says when it changed: a notification on `streetsense_registry` at each commit.

Ingest checks readings against the registry (known devices, spot sensors, each lot's capacity)
from a copy it keeps in memory. It re-read that copy every five minutes, so a capacity an
operator corrected, or a spot added, was refused for minutes after `streetsense registry load`.
Now every statement that changes sites, lots, devices or spots notifies the channel when its
transaction commits (PostgreSQL folds the notifications of one transaction into one), whoever
made the change, and ingest re-reads at once (store.registry_changes).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from store.db import Capabilities
from streetsense.config import DatabaseSettings

NOTIFY = """
CREATE FUNCTION notify_registry_change() RETURNS trigger
LANGUAGE plpgsql AS $function$
BEGIN
    PERFORM pg_notify('streetsense_registry', '');
    RETURN NULL;
END
$function$
"""
TABLES = ("sites", "lots", "devices", "spots")


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the notifying function and a statement trigger on each registry table."""
    del caps, settings  # plain tables on both backends
    conn.execute(NOTIFY)
    for table in TABLES:
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION notify_registry_change()"
            ).format(sql.Identifier(f"{table}_changed"), sql.Identifier(table))
        )
