"""Ingest's copy of the registry: known devices, spot sensors, lot capacities; kept current.

Readings are checked against this copy, never against the database one reading at a time. It
is read again when the database says the registry changed (migration 004 notifies on every
change, whoever made it) and every REFRESH_S anyway; a reconnection reads it again too, since
notifications sent while away are lost. All of it runs on ingest's commit thread, which owns
the connection and is the only user of the quarantine gate.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Final

import psycopg

from ingest.classify import Classifier
from ingest.fastdecode import forget_names
from ingest.metrics import IngestMetrics
from store.quarantine import active_devices, quarantine_usage, registered_sites, spot_sensors
from store.registry_changes import changed_elsewhere, listen, lot_capacities

log = logging.getLogger(__name__)
REFRESH_S: Final = 300.0  # read again this often even when no change was notified
# Devices enrolled one by one notify once each: at most one read per gap, the last one included.
MIN_GAP_S: Final = 2.0


class RegistryCopy:
    """Read the registry into the classifiers when it changed, or when it is time."""

    def __init__(self, classifiers: Sequence[Classifier], metrics: IngestMetrics) -> None:
        self.classifiers = classifiers
        self.metrics = metrics
        self._read_at = -math.inf
        self._changed = True

    def connected(self, conn: psycopg.Connection) -> None:
        """Listen for changes on a new connection; what changed meanwhile is read again."""
        listen(conn)
        self._changed = True

    def refresh(self, conn: psycopg.Connection) -> bool:
        """Read the registry again if it changed or is due; return whether it was read."""
        if changed_elsewhere(conn):
            self._changed = True
        since = time.monotonic() - self._read_at
        if not (self._changed and since >= MIN_GAP_S) and since < REFRESH_S:
            return False
        self._read(conn, changed=self._changed)
        return True

    def _read(self, conn: psycopg.Connection, *, changed: bool) -> None:
        known = active_devices(conn)
        spots = spot_sensors(conn)
        capacities = lot_capacities(conn)
        for classifier in self.classifiers:
            classifier.known, classifier.spots = known, spots
            classifier.capacities = capacities
        # The classifiers share one gate: what quarantine holds, counted from the database.
        self.classifiers[0].gate.load(quarantine_usage(conn), registered_sites(conn))
        forget_names()  # names were checked against the registry as it was
        self._read_at = time.monotonic()
        self._changed = False
        self.metrics.registry_reads.inc()
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "registry read: %d devices, %d with spot sensors, %d counting for a lot",
            len(known),
            len(spots),
            len(capacities),
        )
