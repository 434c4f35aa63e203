"""`streetsense export`: CSV and Parquet, filtered, streamed, with clear errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from store.export import BATCH_ROWS, ExportRequest, export
from store.rollups import refresh
from store.writes import Rejection, write_rejections
from streetsense.cli import main
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.store.support import T0, at, load_city, spot, write


@pytest.fixture
def city_db(
    db: psycopg.Connection, settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> psycopg.Connection:
    """Return the test database holding the test city, a morning of readings and rollups."""
    monkeypatch.setenv("STREETSENSE_DATABASE_URL", database_url)
    load_city(db)
    write(db, [
        spot("s1", 0, True),
        spot("s1", 30, False),
        spot("s2", 90, True),  # after the exported range
        Reading("loop", "vehicle_count", at(1), 12.0, "l1"),
        Reading("loop", "mean_speed", at(1), 45.0, "l1"),
    ])  # fmt: skip
    refresh(db, settings, until=at(60))
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the streetsense CLI; return its exit code and stdout."""
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_readings_of_a_lot_as_csv_on_stdout(
    city_db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "export", "readings", "--from", "2026-11-20T08:00", "--to", "2026-11-20T09:00Z",
        "--lot", "market",
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["observed_at"], r["sub_id"], r["value"]) for r in rows] == [
        ("2026-11-20T08:00:00Z", "s1", "1.0"),
        ("2026-11-20T08:30:00Z", "s1", "0.0"),
    ]


def test_occupancy_as_parquet(city_db: psycopg.Connection, tmp_path: Path) -> None:
    target = tmp_path / "occupancy.parquet"
    code = main([
        "export", "occupancy", "--from", "2026-11-20", "--to", "2026-11-21", "--lot", "market",
        "--resolution", "1h", "--format", "parquet", "--output", str(target),
    ])  # fmt: skip
    assert code == 0
    table = pq.read_table(target)
    assert table.column_names == [
        "bucket",
        "lot_id",
        "occupied",
        "capacity",
        "occupancy",
        "samples",
    ]
    assert table.to_pylist() == [
        {"bucket": T0, "lot_id": "market", "occupied": 0.5, "capacity": 4,
         "occupancy": 0.125, "samples": 2},
    ]  # fmt: skip
    assert not Path(f"{target}.partial").exists()


def test_flow_of_a_segment_as_csv_file(city_db: psycopg.Connection, tmp_path: Path) -> None:
    target = tmp_path / "flow.csv"
    code = main([
        "export", "flow", "--from", "2026-11-20", "--to", "2026-11-21", "--segment", "ring",
        "--output", str(target),
    ])  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [(r["bucket"], r["vehicle_count"], r["mean_speed"]) for r in rows] == [
        ("2026-11-20T08:00:00Z", "12.0", "45.0")
    ]


def test_rejected_keeps_reason_and_payload(
    city_db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    with city_db.transaction():
        write_rejections(
            city_db, [Rejection(at(5), "t/gw/parking", "bad_payload", "not JSON", b"{oops")], 100
        )
    code, out = run(capsys, "export", "rejected", "--from", "2026-11-20", "--to", "2026-11-21")
    assert code == 0
    (row,) = csv.DictReader(io.StringIO(out))
    assert (row["reason_code"], row["reason"], row["payload"]) == (
        "bad_payload",
        "not JSON",
        "{oops",
    )


@pytest.mark.parametrize(
    ("argv", "cause"),
    [
        (["readings", "--from", "yesterday", "--to", "2026-11-21"], "not an ISO 8601 time"),
        (["readings", "--from", "2026-11-21", "--to", "2026-11-20"], "is not before --to"),
        (["readings", "--from", "2026-11-20", "--to", "2026-11-21", "--lot", "nope"],
         "lot 'nope' is not in the registry"),
        (["flow", "--from", "2026-11-20", "--to", "2026-11-21", "--lot", "market"],
         "flow is per segment"),
        (["readings", "--from", "2026-11-20", "--to", "2026-11-21", "--resolution", "1h"],
         "--resolution applies to occupancy and flow"),
        (["flow", "--from", "2026-11-20", "--to", "2026-11-21", "--format", "parquet"],
         "give --output FILE"),
    ],
)  # fmt: skip
def test_bad_requests_say_what_to_fix(
    city_db: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    cause: str,
) -> None:
    code, out = run(capsys, "export", *argv)
    assert code == 2
    assert out == ""
    assert cause in caplog.text


class Batches:
    """A sink that keeps only the size of each batch it is given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.closed = False

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.sizes.append(len(rows))

    def close(self) -> None:
        self.closed = True


def test_large_exports_stream_in_bounded_batches(db: psycopg.Connection) -> None:
    total = BATCH_ROWS * 2 + 17
    write(db, [Reading("gw", "occupied", at(i / 60), float(i % 2), "s1") for i in range(total)])
    sink = Batches()
    request = ExportRequest("readings", T0, at(total))
    assert export(db, request, sink) == total
    assert max(sink.sizes) <= BATCH_ROWS
    assert len(sink.sizes) == 3
    assert sink.closed
