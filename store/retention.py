"""Delete refused data past its retention, in chunks that hold no lock for long."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import psycopg
from psycopg import sql

# The tables of refused data; each has `id` and `received_at` (indexed).
PRUNED: Final = frozenset({"rejected_messages", "quarantine"})


def prune(conn: psycopg.Connection, table: str, before: datetime, chunk: int = 10_000) -> int:
    """Delete the table's rows received before `before`; return how many went."""
    if table not in PRUNED:
        raise ValueError(f"{table} is not a table of refused data")
    statement = sql.SQL(
        "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE received_at < %s LIMIT %s)"
    ).format(table=sql.Identifier(table))
    deleted = 0
    while True:
        cur = conn.execute(statement, (before, chunk))
        deleted += cur.rowcount
        if cur.rowcount < chunk:
            return deleted
