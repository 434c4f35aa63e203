"""Analytics: what each stored forecast was anchored on, so readers can re-anchor it on a newer
live value.

A run's forecast of a series starts from that series' latest observation before `data_end`
(`observed_at`, `observed_value`); the model's correction towards that observation fades with
the series' fitted half-life (`half_life_s`, NULL when it does not fade). A reader holding a
fresher value v at time t shifts every forecast point at time `at` >= t by
(v - forecast at t) * 0.5 ^ ((at - t) / half_life_s), bands included (docs/forecasting.md).
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

ANCHORS = """
CREATE TABLE forecast_anchors (
    run_id bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    series_id text NOT NULL,
    -- the latest observation the forecast starts from (a rollup bucket's start and value)
    observed_at timestamptz NOT NULL,
    observed_value double precision NOT NULL,
    -- how fast a departure from the forecast fades, seconds; NULL: it persists
    half_life_s double precision CHECK (half_life_s > 0),
    PRIMARY KEY (run_id, series_id)
);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create forecast_anchors; the same on TimescaleDB and plain PostgreSQL."""
    del caps, settings
    conn.execute(ANCHORS)
