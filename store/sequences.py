"""Per-device sequence state (device_sequences), read and written inside ingest's batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True, slots=True)
class SequenceRow:
    """One device's stored confirmation state."""

    device_id: str
    site_id: str
    contiguous_seq: int
    max_seq: int
    pending: list[int]
    lost: int


def lock_sequences(
    conn: psycopg.Connection, sites: Mapping[str, str], first_contiguous: int
) -> dict[str, SequenceRow]:
    """Create missing rows and lock every row of these devices for this transaction.

    Rows are locked in device order so two ingest processes never deadlock on each other.

    Args:
        conn: a connection inside the batch's transaction.
        sites: device id -> site id of the devices in the batch.
        first_contiguous: contiguous_seq of a device seen for the first time.

    Returns:
        The locked rows by device id.
    """
    devices = sorted(sites)
    if not devices:
        return {}
    conn.execute(
        "INSERT INTO device_sequences (device_id, site_id, contiguous_seq, max_seq) "
        "SELECT d, s, %s, %s FROM unnest(%s::text[], %s::text[]) AS t(d, s) ORDER BY d "
        "ON CONFLICT (device_id) DO NOTHING",
        (first_contiguous, first_contiguous, devices, [sites[d] for d in devices]),
    )
    rows = conn.execute(
        "SELECT device_id, site_id, contiguous_seq, max_seq, pending, lost "
        "FROM device_sequences WHERE device_id = ANY(%s) ORDER BY device_id FOR UPDATE",
        (devices,),
    ).fetchall()
    return {row[0]: SequenceRow(*row) for row in rows}


def save_sequences(conn: psycopg.Connection, rows: Sequence[SequenceRow]) -> None:
    """Write back the changed rows (they are locked by lock_sequences)."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE device_sequences SET site_id = %s, contiguous_seq = %s, max_seq = %s, "
            "pending = %s, lost = %s, updated_at = now() WHERE device_id = %s",
            [
                (r.site_id, r.contiguous_seq, r.max_seq, r.pending, r.lost, r.device_id)
                for r in rows
            ],
        )


def read_sequence(conn: psycopg.Connection, device_id: str) -> SequenceRow | None:
    """Return one device's sequence state, or None when it never sent a seq."""
    row = conn.execute(
        "SELECT device_id, site_id, contiguous_seq, max_seq, pending, lost "
        "FROM device_sequences WHERE device_id = %s",
        (device_id,),
    ).fetchone()
    return SequenceRow(*row) if row else None


def reset_sequence(conn: psycopg.Connection, device_id: str) -> bool:
    """Forget a device's sequence state (after its buffer was replaced); True when it existed."""
    cur = conn.execute("DELETE FROM device_sequences WHERE device_id = %s", (device_id,))
    return cur.rowcount > 0
