"""Binary COPY into `readings` under different unique keys: what the key order costs an insert.

Each variant gets a fresh database with the readings table, its two BRIN indexes and one unique
key, then 40 COPYs of 30,000 rows (1.2M) shaped like the ingest benchmark's 20-reading packs
from 10 devices, or with `--series 7500` like 375 gateways of 20 spots. Reports rows/s.

    .venv/bin/python bench/readings_key_order.py [--series 10]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

SERVER = "postgresql://postgres@127.0.0.1:5432/{}"
ADMIN = SERVER.format("postgres")
KEYS = {
    "device, kind, sub_id, observed (ours)": "device_id, kind, sub_id, observed_at",
    "device, observed, kind, sub_id": "device_id, observed_at, kind, sub_id",
    "device, sub_id, observed, kind": "device_id, sub_id, observed_at, kind",
}
TABLE = """
CREATE TABLE readings (device_id text NOT NULL, kind text NOT NULL, sub_id text NOT NULL,
  observed_at timestamptz NOT NULL, received_at timestamptz NOT NULL,
  value double precision NOT NULL, seq bigint, clock_suspect boolean NOT NULL DEFAULT false);
CREATE INDEX ON readings USING brin (observed_at);
CREATE INDEX ON readings USING brin (received_at);
"""
TYPES = ("text", "text", "text", "timestamptz", "timestamptz", "float8", "int8", "bool")
COPY = "COPY readings FROM STDIN (FORMAT BINARY)"


def batches(series: int) -> list[list[tuple[object, ...]]]:
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    devices = max(1, series // 20) if series > 10 else series
    subs = [f"spot-{s:02d}" for s in range(20)] if series > 10 else [""]
    out = []
    for batch in range(40):
        rows: list[tuple[object, ...]] = []
        for message in range(30_000 // 20):
            device = f"dev-{message % devices:04d}"
            at = t0 + timedelta(seconds=batch * 10, milliseconds=message // devices * 13)
            for j in range(20):
                sub = subs[j % len(subs)]
                rows.append((device, "occupied", sub, at + timedelta(microseconds=10 * j), at,
                             1.0, batch * 10_000 + message, False))  # fmt: skip
        out.append(rows)
    return out


def measure(key: str, data: list[list[tuple[object, ...]]]) -> float:
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS ss_key_bench")
        admin.execute("CREATE DATABASE ss_key_bench")
    try:
        with psycopg.connect(SERVER.format("ss_key_bench"), autocommit=True) as conn:
            conn.execute(TABLE)
            conn.execute(sql.SQL("CREATE UNIQUE INDEX ON readings ({})").format(sql.SQL(key)))
            elapsed = 0.0
            for rows in data:
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur, cur.copy(COPY) as copy:
                    copy.set_types(TYPES)
                    for row in rows:
                        copy.write_row(row)
                elapsed += time.perf_counter() - started
        return sum(map(len, data)) / elapsed
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS ss_key_bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10, help="10 devices, or N/20 gateways")
    args = parser.parse_args()
    data = batches(args.series)
    print("| unique key | rows/s |\n|---|---|")
    for name, key in KEYS.items():
        print(f"| {name} | {measure(key, data):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
