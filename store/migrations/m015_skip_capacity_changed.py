"""Analytics: a series may be left without a forecast because its capacity just changed.

A lot whose capacity changed to a level new to the window, held for less than a day, gets no
forecast (neither its old level nor the few readings since tell the future): reason
'capacity_changed' joins the codes `forecast_skips` accepts.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

REASONS = """
ALTER TABLE forecast_skips DROP CONSTRAINT forecast_skips_reason_check;
ALTER TABLE forecast_skips ADD CONSTRAINT forecast_skips_reason_check
    CHECK (reason IN ('no_data', 'too_short', 'constant', 'over_capacity', 'capacity_changed'));
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Widen the reasons' check; the same on TimescaleDB and plain PostgreSQL."""
    del caps, settings
    conn.execute(REASONS)
