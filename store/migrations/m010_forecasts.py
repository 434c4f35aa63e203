"""Analytics: forecast runs, their forecasts with 80% intervals, and backtest results."""

from __future__ import annotations

import psycopg

from store.db import Capabilities
from streetsense.config import DatabaseSettings

FORECASTS = """
CREATE TABLE forecast_runs (
    run_id bigserial PRIMARY KEY,
    stream text NOT NULL CHECK (stream IN ('occupancy', 'flow')),
    step_seconds integer NOT NULL CHECK (step_seconds > 0),
    issued_at timestamptz NOT NULL,
    -- the data window the models were fitted on, [data_start, data_end)
    data_start timestamptz NOT NULL,
    data_end timestamptz NOT NULL,
    horizon integer NOT NULL CHECK (horizon > 0),
    model text NOT NULL,
    series integer NOT NULL,
    -- one run per stream, window end and model: rerunning the job replaces it
    UNIQUE (stream, data_end, model)
);
CREATE TABLE forecasts (
    run_id bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    series_id text NOT NULL,
    at timestamptz NOT NULL,
    step integer NOT NULL,
    yhat double precision NOT NULL,
    lo80 double precision NOT NULL,
    hi80 double precision NOT NULL,
    model text NOT NULL,
    PRIMARY KEY (run_id, series_id, at)
);
CREATE INDEX forecasts_series ON forecasts (series_id, at);
CREATE TABLE backtest_results (
    run_id bigint NOT NULL REFERENCES forecast_runs ON DELETE CASCADE,
    model text NOT NULL,
    -- '' pools all series; step 0 pools all horizon steps
    series_id text NOT NULL DEFAULT '',
    step integer NOT NULL DEFAULT 0,
    mae double precision,
    rmse double precision,
    mape double precision,
    mase double precision,
    coverage80 double precision,
    points integer NOT NULL,
    PRIMARY KEY (run_id, model, series_id, step)
);
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Create the forecast tables; the same on TimescaleDB and plain PostgreSQL."""
    del caps, settings
    conn.execute(FORECASTS)
