"""Bulk writes of readings and rejections; idempotent, because devices deliver at least once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
import psycopg.errors

from store.reading_rows import COLUMNS, ReadingRows
from streetsense.readings import Reading

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS readings_stage (LIKE readings INCLUDING DEFAULTS)
ON COMMIT DELETE ROWS
"""
_COPY_STAGE = f"COPY readings_stage ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
_COPY_DIRECT = f"COPY readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
# The merge, telling per device how many rows were new (ingest keeps per-device totals).
_MERGE_COUNTED = """
WITH new AS (
    INSERT INTO readings SELECT * FROM readings_stage
    ON CONFLICT (device_id, kind, sub_id, observed_at) DO NOTHING
    RETURNING device_id
)
SELECT device_id, count(*) FROM new GROUP BY device_id
"""
# The same reading (unique key) more than once in a batch with different values, or with a value
# other than the one already stored: the merge keeps the first (or the stored), so the others are
# refused with a reason. Only staged batches can hold one: a direct COPY of such a batch fails on
# the unique key and takes the staged path. A stored row with a revision was amended on purpose;
# an older copy of it is a re-send, not a conflict. Run before the merge, so the batch's own new
# rows do not count as stored.
_CONFLICTS = """
SELECT s.device_id, s.kind, s.sub_id, s.observed_at, count(*),
       coalesce(min(s.value) FILTER (WHERE s.value <> r.value), min(s.value)),
       coalesce(max(s.value) FILTER (WHERE s.value <> r.value), max(s.value)),
       r.value, count(*) FILTER (WHERE s.value <> r.value)
FROM readings_stage s
LEFT JOIN readings r ON r.device_id = s.device_id AND r.kind = s.kind AND r.sub_id = s.sub_id
    AND r.observed_at = s.observed_at AND r.revision = 0
GROUP BY s.device_id, s.kind, s.sub_id, s.observed_at, r.value
HAVING min(s.value) <> max(s.value) OR min(s.value) <> r.value OR max(s.value) <> r.value
"""


@dataclass(frozen=True, slots=True)
class Conflict:
    """A reading that came with values other than the one kept (the batch's first, or stored)."""

    device_id: str
    kind: str
    sub_id: str
    observed_at: datetime
    copies: int  # copies in the batch
    lowest: float  # of the refused copies' values
    highest: float
    stored: float | None = None  # the value stored by an earlier batch, if any
    differing: int = 0  # copies whose value differs from the stored one

    @property
    def refused(self) -> int:
        """How many of the batch's copies were refused (a copy equal to the kept value is not)."""
        return self.differing if self.stored is not None else self.copies - 1


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message, or one record of it, that was refused; kept with its reason."""

    received_at: datetime
    topic: str
    reason_code: str
    reason: str
    payload: bytes
    device_id: str | None = None
    record_index: int | None = None
    seq: int | None = None
    repeats: int = 1  # >1: a summary of this many refusals (ingest.refusals)


def write_readings(
    conn: psycopg.Connection, readings: Sequence[Reading], received_at: Sequence[datetime]
) -> int:
    """Write readings in the caller's transaction; duplicates are skipped.

    Args:
        conn: a connection inside a transaction the caller commits.
        readings: the readings.
        received_at: the receive time of each reading, same length.

    Returns:
        How many rows were new (the rest were duplicates of stored readings).
    """
    if len(readings) != len(received_at):
        raise ValueError("readings and received_at must have the same length")
    rows = ReadingRows(
        (r.device_id, r.kind, r.sub_id or "", r.observed_at, received, r.value, r.seq,
         r.clock_suspect)
        for r, received in zip(readings, received_at, strict=True)
    )  # fmt: skip
    return sum(write_reading_rows(conn, rows).values())


class ReadingWriter:
    """Write reading rows, COPYing straight into readings while no duplicates arrive.

    A direct COPY costs about half of staging plus INSERT ... ON CONFLICT. When a batch holds
    a reading already stored (a re-send, a redelivery after a crash) the COPY fails on the
    unique key, is rolled back to a savepoint and the batch goes through the staging path;
    the next batches take that path too, since re-sends come in runs.
    """

    def __init__(self, staged_after_conflict: int = 20) -> None:
        self.staged_after_conflict = staged_after_conflict
        self._staged_left = 0

    def write(
        self, conn: psycopg.Connection, rows: ReadingRows, conflicts: list[Conflict] | None = None
    ) -> dict[str, int]:
        """Write rows in the caller's transaction; return how many were new per device.

        Readings sent twice in the batch with different values, or with a value other than the
        stored one, are appended to `conflicts`.
        """
        if not rows:
            return {}
        if self._staged_left > 0:
            self._staged_left -= 1
            return write_reading_rows(conn, rows, conflicts)
        try:
            with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_DIRECT) as copy:
                copy.write(rows.copy_data())
        except psycopg.errors.UniqueViolation:
            self._staged_left = self.staged_after_conflict
            return write_reading_rows(conn, rows, conflicts)
        return dict(rows.per_device)


def write_reading_rows(
    conn: psycopg.Connection, rows: ReadingRows, conflicts: list[Conflict] | None = None
) -> dict[str, int]:
    """Write reading rows in the caller's transaction; duplicates are skipped.

    Args:
        conn: a connection inside a transaction the caller commits.
        rows: the rows.
        conflicts: where to append readings whose copies disagree (None: unchecked).

    Returns:
        How many rows were new per device id (devices with none new are absent).
    """
    if not rows:
        return {}
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        with cur.copy(_COPY_STAGE) as copy:
            copy.write(rows.copy_data())
        if conflicts is not None:
            conflicts += [Conflict(*row) for row in cur.execute(_CONFLICTS).fetchall()]
        cur.execute(_MERGE_COUNTED)
        counts = {device: int(count) for device, count in cur.fetchall()}
        cur.execute("TRUNCATE readings_stage")
    return counts


def write_rejections(
    conn: psycopg.Connection, rejections: Sequence[Rejection], payload_cap: int
) -> None:
    """Keep rejected messages with their reasons; payloads are cut at `payload_cap` bytes."""
    if not rejections:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO rejected_messages (received_at, topic, device_id, reason_code, reason,"
            " record_index, seq, payload, payload_bytes, repeats)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    r.received_at,
                    r.topic[:1024],
                    r.device_id,
                    r.reason_code,
                    r.reason[:2000],
                    r.record_index,
                    r.seq,
                    r.payload[:payload_cap],
                    len(r.payload),
                    r.repeats,
                )
                for r in rejections
            ],
        )
