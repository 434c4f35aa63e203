"""What ingest checks readings against, read from the registry, and word of when it changed.

Migration 004 notifies `streetsense_registry` whenever a transaction changed sites, lots,
devices or spots. A connection that listens receives the notification with its next statement
or poll, so asking costs one non-blocking read of the socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import psycopg
from psycopg import sql

CHANNEL: Final = "streetsense_registry"


@dataclass(frozen=True, slots=True)
class LotCapacity:
    """The lot a device counts for and that lot's registered capacity."""

    lot_id: str
    capacity: int


def listen(conn: psycopg.Connection) -> None:
    """Have this (autocommit) connection receive the registry's change notifications."""
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))


def changed_elsewhere(conn: psycopg.Connection) -> bool:
    """Tell whether another session changed the registry since the last call; never waits.

    Changes this connection's own session made (ingest registering devices on first sight)
    are left out: the caller knows about them.
    """
    own = conn.info.backend_pid
    return bool([n for n in conn.notifies(timeout=0) if n.channel == CHANNEL and n.pid != own])


def lot_capacities(conn: psycopg.Connection) -> dict[str, LotCapacity]:
    """Return, for every active device registered to a lot, that lot and its capacity."""
    rows = conn.execute(
        "SELECT d.device_id, l.lot_id, l.capacity FROM devices d "
        "JOIN lots l ON l.lot_id = d.lot_id WHERE d.active"
    )
    return {device: LotCapacity(lot, int(capacity)) for device, lot, capacity in rows}
