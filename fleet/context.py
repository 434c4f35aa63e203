"""What every fleet operation works with: the database, the broker, the topics and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from fleet.dynsec import DynSec
from fleet.link import FleetLink
from store.confirm_secret import read_confirm_secret
from streetsense.config import Settings
from streetsense.fleet_protocol import FleetTopics
from streetsense.topics import Topics


def now_utc() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class Fleet:
    """One process's handles on the fleet (the service's, or a CLI command's).

    `conn` is an autocommit connection: operations open their own transactions.
    """

    settings: Settings
    conn: psycopg.Connection
    link: FleetLink
    clock: Callable[[], datetime] = now_utc
    _secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.dynsec = DynSec(self.link)
        self.topics = Topics(self.settings.mqtt.topic_prefix)
        self.fleet_topics = FleetTopics(self.settings.fleet.topic_prefix)

    def secret(self) -> bytes:
        """Return the city's confirmation secret (devices' keys derive from it)."""
        if self._secret is None:
            self._secret = read_confirm_secret(self.conn)
        return self._secret

    def lifetime(self, issued_at: datetime) -> tuple[datetime, datetime]:
        """Return (rotate_after, expires_at) of a password issued at `issued_at`."""
        life = timedelta(seconds=self.settings.fleet.credential_lifetime_s)
        return issued_at + life * self.settings.fleet.rotate_share, issued_at + life
