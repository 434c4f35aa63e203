"""Delete refused data past its retention: rejected_messages and quarantine stay bounded in time."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from store.retention import prune as prune_table
from streetsense.config import IngestSettings

log = logging.getLogger(__name__)
PRUNE_EVERY_S: Final = 600.0


class Pruner:
    """Prune both tables every PRUNE_EVERY_S, between two batches of ingest's commit thread."""

    def __init__(self, settings: IngestSettings) -> None:
        self.rejected_days = settings.rejected_retention_days
        self.quarantine_days = settings.quarantine_retention_days
        self._at = float("-inf")

    def due(self) -> bool:
        """Tell whether a prune is due."""
        return time.monotonic() - self._at >= PRUNE_EVERY_S

    def prune(self, conn: psycopg.Connection) -> tuple[int, int]:
        """Delete what is past retention; return (rejections, quarantined messages) deleted.

        A failure is logged and retried at the next turn: pruning never stops ingest.
        """
        self._at = time.monotonic()
        now = datetime.now(UTC)
        rejected = quarantined = 0
        try:
            if self.rejected_days > 0:
                rejected = prune_table(
                    conn, "rejected_messages", now - timedelta(days=self.rejected_days)
                )
            if self.quarantine_days > 0:
                quarantined = prune_table(
                    conn, "quarantine", now - timedelta(days=self.quarantine_days)
                )
        except psycopg.Error as exc:
            log.warning(
                "pruning refused data failed (%s); retrying in %.0f s",
                str(exc).splitlines()[0],
                PRUNE_EVERY_S,
            )
        if rejected or quarantined:
            log.info(
                "pruned %d rejections older than %d days and %d quarantined messages older "
                "than %d days",
                rejected,
                self.rejected_days,
                quarantined,
                self.quarantine_days,
            )
        return rejected, quarantined
