"""A private primary and its streaming replica (pg_basebackup), to run readers on the replica.

Both PostgreSQL 15 clusters live in temporary folders on free ports (harness.ingest_services);
the replica is a hot standby that streams the primary's WAL, as a city's read replica would.
"""

from __future__ import annotations

import time

import psycopg

from harness.ingest_services import PrivatePostgres


class StreamingReplica(PrivatePostgres):
    """A hot standby of a PrivatePostgres, made with pg_basebackup -R (streaming, read-only)."""

    def __init__(self, primary: PrivatePostgres) -> None:
        super().__init__()
        self.primary = primary

    def clone(self) -> StreamingReplica:
        """Copy the primary with pg_basebackup (which writes the standby's settings), start it."""
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        self.start()
        return self

    def lag_s(self, timeout: float = 30.0) -> float:
        """Commit a mark on the primary; return the seconds until the replica has replayed it.

        Raises:
            TimeoutError: the replica did not replay it within `timeout`.
        """
        with psycopg.connect(self.primary.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        mark, started = row[0], time.monotonic()
        with psycopg.connect(self.url, autocommit=True) as conn:
            while time.monotonic() - started < timeout:
                replayed = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (mark,)
                ).fetchone()
                if replayed and replayed[0]:
                    return time.monotonic() - started
                time.sleep(0.05)
        raise TimeoutError(f"the replica did not replay {mark} within {timeout} s")
