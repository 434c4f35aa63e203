"""Rejected messages: read back to be published again once fixed, summed for doctor, pruned."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import psycopg


def replayable(conn: psycopg.Connection, codes: Collection[str]) -> list[tuple[int, str, bytes]]:
    """Return (id, topic, payload) of unreplayed rejections with these codes, oldest first.

    Only rows holding their whole payload: a payload cut at `ingest.rejected_payload_cap`
    cannot be sent again (`cut_payloads` counts them). Rows without a payload are left out: a
    message's other refused records point at its first row, which holds it, and a summary of
    refusals past `ingest.refusals_kept_per_minute` has none to send.
    """
    rows = conn.execute(
        "SELECT id, topic, payload FROM rejected_messages"
        " WHERE reason_code = ANY(%s) AND replayed_at IS NULL AND payload_bytes > 0"
        " AND octet_length(payload) = payload_bytes ORDER BY id",
        (list(codes),),
    ).fetchall()
    return [(int(row[0]), row[1], bytes(row[2])) for row in rows]


def cut_payloads(conn: psycopg.Connection, codes: Collection[str]) -> int:
    """Return how many unreplayed rejections with these codes kept only part of their payload."""
    row = conn.execute(
        "SELECT count(*) FROM rejected_messages WHERE reason_code = ANY(%s)"
        " AND replayed_at IS NULL AND octet_length(payload) <> payload_bytes",
        (list(codes),),
    ).fetchone()
    return int(row[0]) if row else 0


def mark_replayed(conn: psycopg.Connection, ids: Sequence[int]) -> int:
    """Note that these rejections were published again; return how many rows changed."""
    cur = conn.execute(
        "UPDATE rejected_messages SET replayed_at = now() WHERE id = ANY(%s)", (list(ids),)
    )
    return cur.rowcount


def refusals_since(conn: psycopg.Connection, since: datetime) -> dict[str, int]:
    """Return how many messages or records were refused since `since`, by reason code.

    A summary row of throttled refusals counts for the `repeats` it stands for.
    """
    rows = conn.execute(
        "SELECT reason_code, sum(repeats) FROM rejected_messages WHERE received_at >= %s "
        "GROUP BY reason_code ORDER BY 2 DESC",
        (since,),
    )
    return {row[0]: int(row[1]) for row in rows}
