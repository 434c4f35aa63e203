"""The city's confirmation secret: ingest signs each device's acks with a key derived from it.

One random secret per database, made here so every ingest process shares it without any file
to distribute; only ingest's role may read it (store.roles.SECRETS). See streetsense.confirm.
"""

from __future__ import annotations

import secrets

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings
from streetsense.confirm import KEY_BYTES

CREATE_TABLE = """
CREATE TABLE confirm_secret (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    secret bytea NOT NULL CHECK (octet_length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the table with a fresh random secret."""
    del caps, settings  # a plain table on both backends
    conn.execute(CREATE_TABLE)
    conn.execute(
        "INSERT INTO confirm_secret (secret) VALUES (%s)", (secrets.token_bytes(KEY_BYTES),)
    )
