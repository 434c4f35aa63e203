"""Revised readings: a higher `revision` replaces the stored reading with the same key.

An edge agent sends a traffic interval once it closes; detections that reach it later (a
sensor process starved of CPU, a serial line that lagged) are folded into that interval and
sent again with the next revision, so a count that missed vehicles never stands as the last
word. The store keeps one row per (device, kind, sub_id, observed_at): a revision updates it
when its number is higher than the stored one, and a re-sent or older revision changes
nothing, so delivery stays idempotent. The update stamps the row's `received_at` anew, which is
how the rollup refresh (store.rollups) finds it and recomputes its bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from streetsense.readings import Reading

_Key = tuple[str, str, str, datetime]  # device_id, kind, sub_id, observed_at
_Row = tuple[str, str, str, datetime, datetime, float, int | None, bool, int]

# One statement per batch; revisions are rare (late detections only), so no COPY is needed.
_UPSERT = """
WITH new AS (
    INSERT INTO readings AS r (device_id, kind, sub_id, observed_at, received_at, value, seq,
                               clock_suspect, revision)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],
                         %s::timestamptz[], %s::float8[], %s::int8[], %s::bool[], %s::int4[])
    ON CONFLICT (device_id, kind, sub_id, observed_at) DO UPDATE
    SET value = excluded.value, revision = excluded.revision, seq = excluded.seq,
        clock_suspect = excluded.clock_suspect, received_at = excluded.received_at
    WHERE r.revision < excluded.revision
    RETURNING r.device_id, r.xmax = 0 AS inserted
)
SELECT device_id, count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
FROM new GROUP BY device_id
"""


class Revisions:
    """The revised readings of one batch: per key only the highest revision, as it came."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[_Key, _Row] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, reading: Reading, received_at: datetime) -> None:
        """Keep a revised reading unless the batch holds a higher revision of it already."""
        sub_id = reading.sub_id or ""
        key = (reading.device_id, reading.kind, sub_id, reading.observed_at)
        held = self._rows.get(key)
        if held is not None and held[8] >= reading.revision:
            return
        self._rows[key] = (*key, received_at, reading.value, reading.seq,
                           reading.clock_suspect, reading.revision)  # fmt: skip

    @property
    def devices(self) -> set[str]:
        """The devices with revisions in the batch."""
        return {key[0] for key in self._rows}

    def earliest(self) -> datetime | None:
        """Return the smallest observed time revised, or None when there is none."""
        return min((key[3] for key in self._rows), default=None)

    def rows(self) -> Sequence[_Row]:
        """Return the rows to write, one per key."""
        return list(self._rows.values())


@dataclass(frozen=True, slots=True)
class RevisionResult:
    """What applying a batch's revisions changed."""

    new: dict[str, int] = field(default_factory=dict)  # rows inserted per device: no report yet
    replaced: int = 0  # stored readings replaced by a higher revision


def write_revisions(conn: psycopg.Connection, revisions: Revisions) -> RevisionResult:
    """Apply revisions in the caller's transaction: insert new keys, replace lower revisions.

    Returns:
        The rows inserted per device id and how many stored rows were replaced; the rest of
        the revisions were already stored (re-sent) or overtaken by a higher revision.
    """
    if not revisions:
        return RevisionResult()
    columns = [list(column) for column in zip(*revisions.rows(), strict=True)]
    with conn.cursor() as cur:
        cur.execute(_UPSERT, columns)
        rows = cur.fetchall()
    return RevisionResult(
        new={device: int(inserted) for device, inserted, _ in rows if inserted},
        replaced=sum(int(replaced) for _, _, replaced in rows),
    )
