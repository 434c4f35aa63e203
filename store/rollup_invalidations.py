"""Tell the rollup refresh about a batch committed too late for its receive-time scan.

The refresh finds new readings by `received_at` (stamped on receipt, before the commit) above
its watermark minus `COMMIT_MARGIN`. A batch received at R and committed at C <= R + margin/2
is always rescanned: the first refresh to see it starts from a watermark W of readings
committed before C, so W < C + skew (ingest hosts' clocks), and with skew <= margin/2,
W - margin < R + margin/2 + margin/2 - margin = R. A batch committed later may fall below
every future scan, so ingest notes it here, in the batch's own transaction, and the next
refresh recomputes those devices' series from the batch's earliest observed time. Steady
state costs nothing: only late batches (a database outage, a lock, a long backoff) write a row.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Final

import psycopg

from store.rollups import COMMIT_MARGIN

# Half the margin leaves the other half for disagreement between ingest hosts' clocks.
LATE_COMMIT_AFTER: Final = COMMIT_MARGIN / 2


def is_late(oldest_received_epoch: float, now_epoch: float) -> bool:
    """Return whether a batch committing now needs `note_late_commit`.

    Args:
        oldest_received_epoch: when the batch's oldest message was received (its
            `received_at`, Unix seconds).
        now_epoch: the time of the commit (Unix seconds, the same clock).

    Returns:
        True when the oldest message was received more than `LATE_COMMIT_AFTER` ago.
    """
    return now_epoch - oldest_received_epoch > LATE_COMMIT_AFTER.total_seconds()


def note_late_commit(
    conn: psycopg.Connection, device_ids: Collection[str], observed_from: datetime
) -> None:
    """Ask the next rollup refresh to recompute these devices from `observed_from` on.

    Call it inside the transaction that writes the late batch, so the note commits (or rolls
    back) with the readings.

    Args:
        conn: the connection writing the batch, inside its transaction.
        device_ids: the devices with readings in the batch.
        observed_from: the earliest `observed_at` among the batch's readings.
    """
    if not device_ids:
        return
    conn.execute(
        "INSERT INTO rollup_invalidations (device_ids, observed_from) VALUES (%s, %s)",
        (sorted(set(device_ids)), observed_from),
    )
