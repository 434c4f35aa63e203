"""Analytics: the series a forecast run left without a forecast, and why.

The job does not forecast a series with no reading in its window, with readings spanning less
than a day, whose every reading is the same value (a stuck counter) or that is above its
capacity in more than 20% of its readings; each gets a row here with a reason code and a
sentence, so readers can say why there is no forecast instead of showing nothing.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

SKIPS = """
CREATE TABLE forecast_skips (
    run_id bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    series_id text NOT NULL,
    reason text NOT NULL
        CHECK (reason IN ('no_data', 'too_short', 'constant', 'over_capacity')),
    detail text NOT NULL,
    PRIMARY KEY (run_id, series_id)
);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create forecast_skips; the same on TimescaleDB and plain PostgreSQL."""
    del caps, settings
    conn.execute(SKIPS)
