"""Reading rows encoded for a binary COPY into readings as they are produced.

Ingest turns tens of thousands of readings a second into rows. Building a tuple with two
datetimes per reading and having psycopg encode it again costs more than the decoding before
it; here each row becomes its COPY bytes at once: the text columns of a series are encoded
once and reused, the rest is one struct.pack. Times are integer microseconds since the Unix
epoch, the resolution the readings table stores.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

# A reading as COPY takes it: device_id, kind, sub_id ('' for none), observed_at, received_at,
# value, seq, clock_suspect.
ReadingRow: TypeAlias = tuple[str, str, str, datetime, datetime, float, int | None, bool]

COLUMNS: Final = "device_id, kind, sub_id, observed_at, received_at, value, seq, clock_suspect"
_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension
_TRAILER: Final = b"\xff\xff"
_FIELDS: Final = struct.Struct(">h")
_LENGTH: Final = struct.Struct(">i")
# PostgreSQL counts timestamps in microseconds from 2000-01-01.
POSTGRES_EPOCH_US: Final = 946_684_800_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
# observed_at, received_at, value, seq, clock_suspect: each field is its length, then its bytes.
_WITH_SEQ: Final = struct.Struct(">iqiqidiqi?")
_WITHOUT_SEQ: Final = struct.Struct(">iqiqidii?")
# For a caller's hot loop that inlines append_row; the arguments are those append_row passes.
PACK_WITH_SEQ: Final = _WITH_SEQ.pack
PACK_WITHOUT_SEQ: Final = _WITHOUT_SEQ.pack
_SERIES_CACHE_SIZE: Final = 200_000
_series: dict[tuple[str, str, str], bytes] = {}


def series_prefix(device_id: str, kind: str, sub_id: str) -> bytes:
    """Return a row's start: its field count and the three text columns, encoded."""
    key = (device_id, kind, sub_id)
    prefix = _series.get(key)
    if prefix is None:
        parts = [_FIELDS.pack(8)]
        for text in key:
            encoded = text.encode()
            parts += (_LENGTH.pack(len(encoded)), encoded)
        if len(_series) >= _SERIES_CACHE_SIZE:
            _series.clear()
        prefix = _series[key] = b"".join(parts)
    return prefix


def epoch_us(moment: datetime) -> int:
    """Return an aware datetime as integer microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def append_row(
    buffer: bytearray,
    prefix: bytes,
    observed_us: int,
    received_us: int,
    value: float,
    seq: int | None,
    clock_suspect: bool,
) -> None:
    """Append one row's COPY bytes to `buffer`; times in microseconds since the Unix epoch."""
    buffer += prefix
    if seq is None:
        buffer += _WITHOUT_SEQ.pack(
            8, observed_us - POSTGRES_EPOCH_US, 8, received_us - POSTGRES_EPOCH_US,
            8, value, -1, 1, clock_suspect,
        )  # fmt: skip
    else:
        buffer += _WITH_SEQ.pack(
            8, observed_us - POSTGRES_EPOCH_US, 8, received_us - POSTGRES_EPOCH_US,
            8, value, 8, seq, 1, clock_suspect,
        )  # fmt: skip


class ReadingRows:
    """Rows for one COPY, with what the commit needs to know of them without decoding them."""

    __slots__ = ("_chunks", "_count", "earliest_us", "per_device")

    def __init__(self, rows: Iterable[ReadingRow] = ()) -> None:
        self._chunks: list[bytes | bytearray] = []
        self._count = 0
        # device id -> rows added for it
        self.per_device: dict[str, int] = {}
        self.earliest_us: int | None = None  # the smallest observed time added
        for row in rows:
            self.add_row(row)

    def __len__(self) -> int:
        return self._count

    def add_row(self, row: ReadingRow) -> None:
        """Add one row given as a tuple (the general path)."""
        device_id, kind, sub_id, observed_at, received_at, value, seq, clock_suspect = row
        observed_us = epoch_us(observed_at)
        encoded = bytearray()
        append_row(
            encoded,
            series_prefix(device_id, kind, sub_id),
            observed_us,
            epoch_us(received_at),
            value,
            seq,
            clock_suspect,
        )
        self.extend(device_id, encoded, 1, observed_us)

    def extend(
        self, device_id: str, encoded: bytes | bytearray, count: int, earliest_us: int
    ) -> None:
        """Add rows of one device already encoded with `append_row`.

        Args:
            device_id: the device all these rows belong to.
            encoded: the rows' bytes.
            count: how many rows they are.
            earliest_us: the smallest observed time among them.
        """
        self._chunks.append(encoded)
        self._count += count
        self.per_device[device_id] = self.per_device.get(device_id, 0) + count
        if self.earliest_us is None or earliest_us < self.earliest_us:
            self.earliest_us = earliest_us

    def earliest(self) -> datetime | None:
        """Return the smallest observed time of the rows, or None when there are none."""
        if self.earliest_us is None:
            return None
        return _EPOCH + timedelta(microseconds=self.earliest_us)

    def copy_data(self) -> bytes:
        """Return the whole binary COPY stream: signature, rows, trailer."""
        return b"".join((_SIGNATURE, *self._chunks, _TRAILER))
