"""Group roles per service (see store.roles); grants are re-applied after every migration."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from store.roles import create_roles
from streetsense.config import DatabaseSettings


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the roles when the migrating user may."""
    create_roles(conn)
