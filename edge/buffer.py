"""The store-and-forward buffer: SQLite in WAL mode, one row per accepted reading.

Contract (docs/edge.md): `put` gives each reading the next sequence number and stores it before
anything is published; rows are read in sequence order; rows leave only on `ack` (ingest
committed them), on `forget` (broker confirmation, a demonstration mode) or when the byte cap
drops the oldest, and every drop is counted. A read error raises; it never looks like an empty
buffer.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from streetsense.errors import ServiceUnavailableError
from streetsense.kinds import KINDS
from streetsense.readings import Reading, datetime_to_epoch, epoch_to_datetime

log = logging.getLogger(__name__)
DROP_LOG_EVERY_S: Final = 10.0
WAL_PAGES: Final = 128  # checkpoint when the WAL reaches this many pages (~512 KB)
ROW_OVERHEAD: Final = 48  # bytes a row costs beyond its text: keys, numbers, page slack
_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS readings (
        seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, sub_id TEXT,
        observed_ms INTEGER NOT NULL, value REAL NOT NULL, clock_suspect INTEGER NOT NULL,
        size INTEGER NOT NULL, sent_ms INTEGER NOT NULL DEFAULT 0,
        revision INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS readings_sent ON readings (sent_ms, seq)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)
_META_KEYS: Final = ("first_seq", "next_seq", "depth", "bytes", "dropped", "dropped_high", "acked")
_DISK_FULL: Final = {"SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC", "SQLITE_IOERR"}


@dataclass(frozen=True, slots=True)
class BufferStats:
    """What `streetsense-edge status` and the health heartbeat report."""

    depth: int
    bytes: int
    dropped: int
    oldest_ms: int | None  # observed time of the oldest reading held
    oldest_unsent_ms: int | None  # observed time of the oldest reading never sent
    first_seq: int  # the first number this buffer issued
    next_seq: int
    acked: int


class Buffer:
    """A SQLite store of readings awaiting confirmation, capped in bytes."""

    def __init__(
        self,
        path: str | Path,
        device_id: str,
        *,
        cap_bytes: int,
        synchronous: str = "full",
        min_free_bytes: int = 0,
    ) -> None:
        self.path = Path(path)
        self.device_id = device_id
        self.cap_bytes = cap_bytes
        self.min_free_bytes = min_free_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_logged_at = -DROP_LOG_EVERY_S
        self._dropped_unlogged = 0
        self._conn = self._open(synchronous)
        self._meta = self._load_meta()

    def _open(self, synchronous: str) -> sqlite3.Connection:
        try:
            conn = self._connect(synchronous)
            status = conn.execute("PRAGMA quick_check").fetchone()[0]
            if status == "ok":
                return conn
            conn.close()
            reason = f"quick_check says {status!r}"
        except sqlite3.DatabaseError as exc:
            reason = str(exc)
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.error(
            "buffer %s is damaged (%s); moved to %s, starting a new one", self.path, reason, aside
        )
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(str(aside) + suffix)
        return self._connect(synchronous)

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit survives a power cut (fsync of the WAL each commit; the agent commits
        # once per loop, not per reading). NORMAL survives a crash of the agent but may lose
        # the last commits on power loss: only for flash that cannot take the writes.
        conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA journal_size_limit=4194304")
        # A small WAL: on a nearly full disk it must fit in the space kept free.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        for statement in _SCHEMA:
            conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(readings)")}
        if "revision" not in columns:  # a buffer written by an agent before revisions
            conn.execute("ALTER TABLE readings ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
        return conn

    def _load_meta(self) -> dict[str, int]:
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if "next_seq" not in meta:
            # A new buffer continues above any earlier one: wall-clock milliseconds grow faster
            # than a device issues sequence numbers (see docs/edge.md for the clock caveat).
            first = int(time.time() * 1000)
            meta = {"first_seq": first, "next_seq": first, "depth": 0, "bytes": 0, "dropped": 0}
            meta |= {"dropped_high": 0, "acked": 0}
            with self._transaction():
                self._save_meta(meta)
            log.info("new buffer %s; sequence numbers start at %d", self.path, meta["next_seq"])
        return meta

    def _save_meta(self, meta: dict[str, int]) -> None:
        self._conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(key, meta[key]) for key in _META_KEYS],
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    def put(self, readings: list[Reading]) -> list[int]:
        """Store readings with the next sequence numbers, in one transaction; return the numbers.

        At the byte cap the oldest readings are dropped (and counted). When the disk is full,
        the oldest are dropped to make room and the write is tried once more.

        Raises:
            ServiceUnavailableError: the readings could not be stored (disk full even after
                dropping, or the file is unwritable); they are counted as dropped.
        """
        if not readings:
            return []
        failure: sqlite3.OperationalError | None = None
        for remedy in (None, self._checkpoint, self._make_room):
            if remedy is not None:
                self._meta = self._load_meta()  # the failed transaction changed nothing
                remedy(len(readings))
            try:
                return self._put(readings)
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") not in _DISK_FULL:
                    raise ServiceUnavailableError(
                        f"cannot write the buffer {self.path}: {exc}"
                    ) from exc
                failure = exc
                log.warning("disk full writing the buffer (%s)", exc)
        self._meta["dropped"] += len(readings)
        raise ServiceUnavailableError(
            f"the disk holding {self.path} is full: {len(readings)} readings could not be "
            "stored; free space or lower buffer.cap_bytes"
        ) from failure

    def _put(self, readings: list[Reading]) -> list[int]:
        meta = dict(self._meta)
        first = meta["next_seq"]
        rows = []
        for offset, reading in enumerate(readings):
            size = ROW_OVERHEAD + len(reading.kind) + len(reading.sub_id or "")
            millis = round(datetime_to_epoch(reading.observed_at) * 1000)
            rows.append(
                (first + offset, reading.kind, reading.sub_id, millis, reading.value,
                 int(reading.clock_suspect), size, reading.revision)
            )  # fmt: skip
            meta["bytes"] += size
        meta["depth"] += len(readings)
        meta["next_seq"] = first + len(readings)
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO readings (seq, kind, sub_id, observed_ms, value, clock_suspect, size,"
                " revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if meta["bytes"] > self.cap_bytes:
                self._drop_in(meta, meta["bytes"] - self.cap_bytes)
            elif self._disk_short() and not self._free_pages():
                # The disk fills before the cap: stop the file growing; new rows reuse the
                # pages of the oldest, dropped in slices of 5 %.
                self._drop_in(meta, max(meta["bytes"] // 20, 4096))
            self._save_meta(meta)
        self._meta = meta
        return list(range(first, meta["next_seq"]))

    def _disk_short(self) -> bool:
        if not self.min_free_bytes:
            return False
        try:
            info = os.statvfs(self.path.parent)
        except OSError:
            return False
        return info.f_bavail * info.f_frsize < self.min_free_bytes

    def _free_pages(self) -> int:
        return int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])

    def _make_room(self, incoming: int) -> None:
        # Still full after folding the WAL in: delete the oldest so SQLite reuses their pages.
        excess = max(incoming * 4 * ROW_OVERHEAD, self._meta["bytes"] // 10)
        log.error("disk full: dropping the oldest readings to make room")
        meta = dict(self._meta)
        try:
            with self._transaction():
                self._drop_in(meta, excess)
                self._save_meta(meta)
        except sqlite3.OperationalError as exc:
            log.error("cannot even delete to make room: %s", exc)
            return
        self._meta = meta
        self._checkpoint()

    def _checkpoint(self, _incoming: int = 0) -> None:
        # Fold the WAL into the database and truncate it: on a full disk that frees its space.
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            log.warning("WAL checkpoint failed: %s", exc)

    def _drop_in(self, meta: dict[str, int], excess: int) -> None:
        freed = count = 0
        last = None
        for seq, size in self._conn.execute("SELECT seq, size FROM readings ORDER BY seq"):
            if freed >= excess:
                break
            freed, count, last = freed + size, count + 1, seq
        if last is None:
            return
        self._conn.execute("DELETE FROM readings WHERE seq <= ?", (last,))
        meta["bytes"] -= freed
        meta["depth"] -= count
        meta["dropped"] += count
        meta["dropped_high"] = max(meta["dropped_high"], last)
        self._dropped_unlogged += count
        if time.monotonic() - self._drop_logged_at >= DROP_LOG_EVERY_S:
            log.warning(
                "buffer full (cap or disk): dropped the %d oldest readings (to seq %d, %d in all)",
                self._dropped_unlogged,
                last,
                meta["dropped"],
            )
            self._drop_logged_at, self._dropped_unlogged = time.monotonic(), 0

    def unsent(self, limit: int, *, above: int = -1, upto: int | None = None) -> list[Reading]:
        """Return up to `limit` never-sent readings with `above < seq <= upto`, oldest first.

        Raises:
            ServiceUnavailableError: the buffer cannot be read (never an empty list instead).
        """
        high = self._meta["next_seq"] if upto is None else upto
        try:
            rows = self._conn.execute(
                "SELECT seq, kind, sub_id, observed_ms, value, clock_suspect, revision "
                "FROM readings "
                "WHERE sent_ms = 0 AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (above, high, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise ServiceUnavailableError(f"cannot read the buffer {self.path}: {exc}") from exc
        return [self._reading(*row) for row in rows]

    def _reading(
        self,
        seq: int,
        kind: str,
        sub_id: str | None,
        millis: int,
        value: float,
        suspect: int,
        revision: int,
    ) -> Reading:
        return Reading(
            device_id=self.device_id,
            kind=kind,
            observed_at=epoch_to_datetime(millis / 1000),
            value=value,
            sub_id=sub_id,
            seq=seq,
            clock_suspect=bool(suspect),
            revision=revision,
        )

    def mark_sent(self, first: int, last: int, now_ms: int) -> None:
        """Note that readings `first..last` were published at `now_ms`."""
        with self._transaction():
            self._conn.execute(
                "UPDATE readings SET sent_ms = ? WHERE seq BETWEEN ? AND ? AND sent_ms = 0",
                (now_ms, first, last),
            )

    def rewind(self, sent_before_ms: int) -> int:
        """Mark readings sent before `sent_before_ms` (and not confirmed) to be sent again."""
        with self._transaction():
            cursor = self._conn.execute(
                "UPDATE readings SET sent_ms = 0 WHERE sent_ms > 0 AND sent_ms < ?",
                (sent_before_ms,),
            )
        return cursor.rowcount

    def oldest_sent_ms(self) -> int | None:
        """Return when the longest-unconfirmed sent reading was sent, or None."""
        row = self._conn.execute("SELECT MIN(sent_ms) FROM readings WHERE sent_ms > 0").fetchone()
        return None if row[0] is None else int(row[0])

    def ack(self, upto: int) -> int:
        """Delete readings with seq <= `upto` (ingest stored them); return how many went."""
        return self._delete(upto, acked=upto)

    def forget(self, seqs: list[int]) -> int:
        """Delete exactly these readings on the broker's PUBACK (confirm = "broker" only)."""
        meta = dict(self._meta)
        chosen = (json.dumps(seqs),)
        with self._transaction():
            freed, count = self._conn.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM readings "
                "WHERE seq IN (SELECT value FROM json_each(?))",
                chosen,
            ).fetchone()
            self._conn.execute(
                "DELETE FROM readings WHERE seq IN (SELECT value FROM json_each(?))", chosen
            )
            meta["bytes"] -= freed
            meta["depth"] -= count
            self._save_meta(meta)
        self._meta = meta
        return int(count)

    def _delete(self, upto: int, acked: int | None = None) -> int:
        meta = dict(self._meta)
        if acked is not None and acked >= meta["next_seq"]:
            self._renumber(meta, acked)
            return 0
        with self._transaction():
            freed, count = self._conn.execute(
                "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM readings WHERE seq <= ?", (upto,)
            ).fetchone()
            self._conn.execute("DELETE FROM readings WHERE seq <= ?", (upto,))
            meta["bytes"] -= freed
            meta["depth"] -= count
            if acked is not None:
                meta["acked"] = max(meta["acked"], acked)
            self._save_meta(meta)
        self._meta = meta
        return int(count)

    def _renumber(self, meta: dict[str, int], acked: int) -> None:
        # Ingest confirmed a number this buffer never issued: it is a new buffer on a device
        # whose clock was behind. Move every held reading above the confirmation, in order.
        low = self._conn.execute("SELECT MIN(seq) FROM readings").fetchone()[0]
        shift = acked + 1 - (meta["next_seq"] if low is None else low)
        log.warning("ingest confirmed seq %d above this buffer's numbers: renumbering", acked)
        with self._transaction():
            self._conn.execute("UPDATE readings SET seq = seq + ?, sent_ms = 0", (shift,))
            meta["next_seq"] += shift
            meta["acked"] = acked
            self._save_meta(meta)
        self._meta = meta

    def seq_floor(self) -> int:
        """Return the lowest sequence number held (next_seq when empty): nothing below remains.

        Sent on every pack: ingest then never waits for readings confirmed or dropped, and a
        receiver meeting this device for the first time learns where its numbers start.
        """
        row = self._conn.execute("SELECT MIN(seq) FROM readings").fetchone()
        return self._meta["next_seq"] if row[0] is None else int(row[0])

    def stats(self) -> BufferStats:
        """Return depth, bytes, drops and the times of the oldest held and unsent readings."""
        oldest = self._conn.execute("SELECT observed_ms FROM readings ORDER BY seq LIMIT 1")
        unsent = self._conn.execute(
            "SELECT observed_ms FROM readings WHERE sent_ms = 0 ORDER BY seq LIMIT 1"
        )
        oldest_row, unsent_row = oldest.fetchone(), unsent.fetchone()
        return BufferStats(
            depth=self._meta["depth"],
            bytes=self._meta["bytes"],
            dropped=self._meta["dropped"],
            oldest_ms=None if oldest_row is None else int(oldest_row[0]),
            oldest_unsent_ms=None if unsent_row is None else int(unsent_row[0]),
            first_seq=self._meta["first_seq"],
            next_seq=self._meta["next_seq"],
            acked=self._meta["acked"],
        )

    def close(self) -> None:
        """Checkpoint and close the database."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("checkpoint on close failed: %s", exc)
        self._conn.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        elif self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def stream_of(kind: str) -> str:
    """Return the stream (topic channel) a kind is published on."""
    return KINDS[kind].stream.value
