"""The config the operators intend for each enrolled device (its retained remote config's
version), beside the one it says is in force: the fleet view shows the drift."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Add the intended config version; the same on both backends."""
    del caps, settings
    conn.execute(
        "ALTER TABLE fleet_devices ADD COLUMN intended_config_version text NOT NULL DEFAULT '', "
        "ADD COLUMN intended_config_at timestamptz"
    )
