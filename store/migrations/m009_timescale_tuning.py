"""TimescaleDB: our indexes only, compression that keeps dedupe cheap, aggregates as refreshed.

`create_hypertable` adds a B-tree on the time column (DESC) to every hypertable. On readings
it made each COPYed row maintain a third index beside the unique key and the receive-time
BRIN: 36-38% more database CPU per row than plain tables, 9-14% without it. Queries by time
are served by chunk exclusion and a BRIN on observed_at, as on plain PostgreSQL, once the
flow aggregates are materialized only: in real-time mode refreshing the 1 h and 1 day tiers
read the newest raw readings through a watermark function that a BRIN's lossy recheck calls
for every row (1.4-1.6 s per tier and refresh, steady refreshes 2-4x slower without the
B-tree). Materialized only, they hold what refresh folded in, as the flow tables of plain
PostgreSQL do; `streetsense db refresh` (the analytics job) and the policies refresh them.

Compression segments readings by device and kind and orders them by sub-id, then time: every
column of the unique key is in segmentby or orderby, so a re-sent reading is checked against
the batches of its own series. Against migration 001's device_id / observed_at, a day of a
simulated city compressed 18-19x instead of 12.5-14x, and checking 5,000 re-sent readings
scanned 0.47-0.55x the compressed batches; segmenting by sub-id too scanned fewer still but
compressed sparse spot sensors only 12.5x (bench/timescale_compression.py, bench/RESULTS.md).
Plain PostgreSQL needs none of this.
"""

from __future__ import annotations

from typing import Final

import psycopg
from psycopg import sql

from store.db import Capabilities
from streetsense.config import DatabaseSettings

HYPERTABLES: Final = (
    ("readings", "observed_at"),
    ("occupancy_5m", "bucket"),
    ("occupancy_1h", "bucket"),
    ("occupancy_1d", "bucket"),
)
FLOW_AGGREGATES: Final = ("flow_lanes_5m", "flow_lanes_1h", "flow_lanes_1d")
SEGMENT_BY: Final = "device_id, kind"
ORDER_BY: Final = "sub_id, observed_at"
# TimescaleDB's default index: one column, the time column, B-tree, descending, not unique.
_DEFAULT_TIME_INDEX = """
SELECT n.nspname, c.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am a ON a.oid = c.relam
JOIN pg_attribute t ON t.attrelid = i.indrelid AND t.attnum = i.indkey[0]
WHERE i.indrelid = to_regclass(%s) AND t.attname = %s AND i.indnatts = 1
  AND NOT i.indisunique AND a.amname = 'btree' AND (i.indoption[0] & 1) = 1
"""


def upgrade(conn: psycopg.Connection, caps: Capabilities, settings: DatabaseSettings) -> None:
    """Drop the default time indexes, index by BRIN, materialize only, set compression."""
    del settings
    if not caps.timescale:
        return
    for table, column in HYPERTABLES:
        for schema, index in conn.execute(_DEFAULT_TIME_INDEX, (table, column)).fetchall():
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, index)))
    # Readings arrive roughly in time order: as on plain PostgreSQL (migration 001).
    conn.execute(
        "CREATE INDEX IF NOT EXISTS readings_observed_brin ON readings USING brin (observed_at)"
        " WITH (autosummarize = on)"
    )
    for view in FLOW_AGGREGATES:
        conn.execute(
            sql.SQL("ALTER MATERIALIZED VIEW {} SET (timescaledb.materialized_only = true)").format(
                sql.Identifier(view)
            )
        )
    # Chunks compressed before keep their settings until they are compressed again.
    conn.execute(
        sql.SQL(
            "ALTER TABLE readings SET (timescaledb.compress_segmentby = {},"
            " timescaledb.compress_orderby = {})"
        ).format(sql.Literal(SEGMENT_BY), sql.Literal(ORDER_BY))
    )
