"""Analytics: forecast runs of more metrics (occupancy rate, mean speed) and a metric column.

Existing readers select runs by `stream` and keep getting what they got: 'occupancy' is occupied
spaces and 'flow' vehicles per step. The new metrics arrive under streams of their own,
'occupancy_rate' (occupied / capacity, 0..1) and 'speed' (mean km/h), so they never mix into
those reads. `metric` and `unit` are derived from `stream`, so no writer has to set them.
"""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

METRICS = """
ALTER TABLE forecast_runs DROP CONSTRAINT IF EXISTS forecast_runs_stream_check;
ALTER TABLE forecast_runs ADD CONSTRAINT forecast_runs_stream_check
    CHECK (stream IN ('occupancy', 'occupancy_rate', 'flow', 'speed'));
-- the rollup column the forecasts are of (occupancy_*.occupied, flow_*.mean_speed, ...)
ALTER TABLE forecast_runs ADD COLUMN metric text NOT NULL GENERATED ALWAYS AS (
    CASE stream
        WHEN 'occupancy' THEN 'occupied'
        WHEN 'occupancy_rate' THEN 'occupancy'
        WHEN 'flow' THEN 'vehicle_count'
        WHEN 'speed' THEN 'mean_speed'
    END) STORED;
ALTER TABLE forecast_runs ADD COLUMN unit text NOT NULL GENERATED ALWAYS AS (
    CASE stream
        WHEN 'occupancy' THEN 'spaces'
        WHEN 'occupancy_rate' THEN 'ratio'
        WHEN 'flow' THEN 'vehicles'
        WHEN 'speed' THEN 'km/h'
    END) STORED;
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Allow the new forecast streams and describe each run's metric and unit."""
    del caps, settings
    conn.execute(METRICS)
