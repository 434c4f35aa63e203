"""Export readings, rollups and rejected messages for analysts, streamed in bounded memory."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TextIO

import psycopg
from psycopg import sql

from streetsense.csvcells import csv_cell
from streetsense.errors import ConfigError, RegistryError

log = logging.getLogger(__name__)

DATASETS: Final = ("readings", "occupancy", "flow", "rejected")
RESOLUTIONS: Final = ("5m", "1h", "1d")
BATCH_ROWS: Final = 5_000

# (column, type) per dataset, in output order; the first timestamp column orders the rows.
COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "readings": (
        ("observed_at", "timestamptz"),
        ("device_id", "text"),
        ("kind", "text"),
        ("sub_id", "text"),
        ("value", "float8"),
        ("received_at", "timestamptz"),
        ("seq", "int8"),
        ("clock_suspect", "bool"),
    ),
    "occupancy": (
        ("bucket", "timestamptz"),
        ("lot_id", "text"),
        ("occupied", "float8"),
        ("capacity", "int4"),
        ("occupancy", "float8"),
        ("samples", "int4"),
    ),
    "flow": (
        ("bucket", "timestamptz"),
        ("segment_id", "text"),
        ("vehicle_count", "float8"),
        ("mean_speed", "float8"),
        ("detector_occupancy", "float8"),
        ("samples", "int4"),
    ),
    "rejected": (
        ("received_at", "timestamptz"),
        ("id", "int8"),
        ("topic", "text"),
        ("device_id", "text"),
        ("reason_code", "text"),
        ("reason", "text"),
        ("record_index", "int4"),
        ("seq", "int8"),
        ("payload_bytes", "int4"),
        ("payload", "bytea"),
    ),
}

_LOT_DEVICES: Final = (
    "SELECT device_id FROM devices WHERE lot_id = %(lot)s"
    " UNION SELECT device_id FROM spots WHERE lot_id = %(lot)s"
)
_SEGMENT_DEVICES: Final = "SELECT device_id FROM devices WHERE segment_id = %(segment)s"


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: a dataset over [start, end), optionally one lot or segment."""

    dataset: str
    start: datetime
    end: datetime
    lot: str | None = None
    segment: str | None = None
    resolution: str = "5m"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of {DATASETS}")
        if self.resolution not in RESOLUTIONS:
            raise ConfigError(f"resolution {self.resolution!r} must be one of {RESOLUTIONS}")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("export times must be timezone-aware")
        if self.start >= self.end:
            raise ConfigError(
                f"--from {self.start.isoformat()} is not before --to {self.end.isoformat()};"
                " give an earlier --from or a later --to"
            )
        if self.lot and self.segment:
            raise ConfigError("give --lot or --segment, not both")
        if self.dataset == "occupancy" and self.segment:
            raise ConfigError("occupancy is per lot: use --lot, or export flow for a segment")
        if self.dataset == "flow" and self.lot:
            raise ConfigError("flow is per segment: use --segment, or export occupancy for a lot")

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """The (name, PostgreSQL type) of every exported column."""
        return COLUMNS[self.dataset]


class RowSink(Protocol):
    """Where exported rows go (a CSV stream, a Parquet file)."""

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write a batch of rows in the request's column order."""

    def close(self) -> None:
        """Finish the output."""


def parse_time(text: str, option: str) -> datetime:
    """Parse an ISO 8601 time or date; without a zone it is taken as UTC.

    Raises:
        ConfigError: the text is not a time; names the option and an example.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-11-01 or"
            " 2026-11-01T07:30:00Z"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def export(
    conn: psycopg.Connection,
    request: ExportRequest,
    sink: RowSink,
    progress: Callable[[datetime, int], None] | None = None,
) -> int:
    """Stream a dataset through a server-side cursor into a sink; return the rows written.

    Args:
        conn: a connection not in autocommit mode (server-side cursors need a transaction).
        request: the validated request.
        sink: where the rows go, batch by batch.
        progress: called after each batch with the last row's time and the batch size.

    Raises:
        RegistryError: the lot or segment is not in the registry.
    """
    query, params = _query(request)
    written = 0
    with conn.transaction(), conn.cursor(name="streetsense_export") as cursor:
        _check_ids(conn, request)
        cursor.itersize = BATCH_ROWS
        cursor.execute(query, params)
        while rows := cursor.fetchmany(BATCH_ROWS):
            sink.write(rows)
            written += len(rows)
            if progress is not None:
                progress(rows[-1][0], len(rows))
    sink.close()
    log.info("exported %d %s rows", written, request.dataset)
    return written


def _check_ids(conn: psycopg.Connection, request: ExportRequest) -> None:
    for table, column, value in (
        ("lots", "lot_id", request.lot),
        ("segments", "segment_id", request.segment),
    ):
        if value is None:
            continue
        query = sql.SQL("SELECT 1 FROM {} WHERE {} = %s").format(
            sql.Identifier(table), sql.Identifier(column)
        )
        if conn.execute(query, (value,)).fetchone() is None:
            known = [row[0] for row in conn.execute(
                sql.SQL("SELECT {} FROM {} ORDER BY 1 LIMIT 5").format(
                    sql.Identifier(column), sql.Identifier(table)))]  # fmt: skip
            raise RegistryError(
                f"{column.removesuffix('_id')} {value!r} is not in the registry (some known:"
                f" {known}); check the id or load the registry first"
            )


def _query(request: ExportRequest) -> tuple[sql.Composed, dict[str, object]]:
    names = [name for name, _ in request.columns]
    time_column = sql.Identifier(names[0])
    table = {
        "readings": "readings",
        "rejected": "rejected_messages",
        "occupancy": f"occupancy_{request.resolution}",
        "flow": f"flow_{request.resolution}",
    }[request.dataset]
    where: list[sql.Composable] = [
        sql.SQL("{} >= %(start)s AND {} < %(end)s").format(time_column, time_column)
    ]
    if request.dataset in ("readings", "rejected"):
        if request.lot:
            where.append(sql.SQL("device_id IN (" + _LOT_DEVICES + ")"))
        if request.segment:
            where.append(sql.SQL("device_id IN (" + _SEGMENT_DEVICES + ")"))
    elif request.lot:
        where.append(sql.SQL("lot_id = %(lot)s"))
    elif request.segment:
        where.append(sql.SQL("segment_id = %(segment)s"))
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {}, 2").format(
        sql.SQL(", ").join(sql.Identifier(n) for n in names),
        sql.Identifier(table),
        sql.SQL(" AND ").join(where),
        time_column,
    )
    params: dict[str, object] = {
        "start": request.start,
        "end": request.end,
        "lot": request.lot,
        "segment": request.segment,
    }
    return query, params


class CsvSink:
    """Rows as CSV (RFC 4180) with a header; times in ISO 8601 UTC, payloads as text (cells
    that would start a spreadsheet formula get a leading apostrophe, see streetsense.csvcells)."""

    def __init__(self, stream: TextIO, columns: Sequence[tuple[str, str]]) -> None:
        self._stream = stream
        # RFC 4180 line ends: the csv module then quotes any cell holding a CR or LF, so a line
        # break inside a payload cannot start a row (and a formula) of its own.
        self._writer = csv.writer(stream, lineterminator="\r\n")
        self._header: list[str] | None = [name for name, _ in columns]

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write a batch of rows (after the header, so a failed request prints nothing)."""
        self._write_header()
        self._writer.writerows([_csv_value(v) for v in row] for row in rows)

    def close(self) -> None:
        """Flush the stream (the caller owns it)."""
        self._write_header()
        self._stream.flush()

    def _write_header(self) -> None:
        if self._header is not None:
            self._writer.writerow(self._header)
            self._header = None


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("utf-8", errors="backslashreplace")
    return csv_cell(value)  # payloads and topics are what devices sent: never a formula


class ParquetSink:
    """Rows as one Parquet file, written a row group per batch (pyarrow)."""

    def __init__(self, path: str, columns: Sequence[tuple[str, str]]) -> None:
        import pyarrow as pa  # noqa: PLC0415  (heavy; only Parquet exports need it)
        import pyarrow.parquet as pq  # noqa: PLC0415

        types = {
            "text": pa.string(),
            "timestamptz": pa.timestamp("us", tz="UTC"),
            "float8": pa.float64(),
            "int4": pa.int32(),
            "int8": pa.int64(),
            "bool": pa.bool_(),
            "bytea": pa.binary(),
        }
        self._pa = pa
        self._schema = pa.schema([(name, types[kind]) for name, kind in columns])
        self._writer = pq.ParquetWriter(path, self._schema)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Write a batch of rows as one row group."""
        columns = [
            self._pa.array([_parquet_value(row[i]) for row in rows], type=field.type)
            for i, field in enumerate(self._schema)
        ]
        self._writer.write_batch(self._pa.record_batch(columns, schema=self._schema))

    def close(self) -> None:
        """Write the file footer."""
        self._writer.close()


def _parquet_value(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value
