"""Caps on what clients may hold open at once: connections and live streams, per address and
in total. One address held 10,000 live streams (issue 14); these say no before memory does."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum


class Refusal(Enum):
    """Why a slot was refused."""

    CLIENT = "per_client"  # this address holds its share already
    TOTAL = "total"  # the server holds all it may


@dataclass(slots=True)
class Slots:
    """Counted slots with a cap per client address and a cap in total; 0 means no cap."""

    per_client: int
    total: int
    held: Counter[str] = field(default_factory=Counter)
    open: int = 0
    refused: Counter[Refusal] = field(default_factory=Counter)

    def take(self, client: str) -> Refusal | None:
        """Take a slot for `client`; return why not when a cap is reached."""
        if self.total and self.open >= self.total:
            return self._refuse(Refusal.TOTAL)
        if self.per_client and self.held[client] >= self.per_client:
            return self._refuse(Refusal.CLIENT)
        self.held[client] += 1
        self.open += 1
        return None

    def give_back(self, client: str) -> None:
        """Return a slot taken by `client`."""
        self.open -= 1
        self.held[client] -= 1
        if self.held[client] <= 0:
            del self.held[client]  # an address that left holds no memory here

    def _refuse(self, why: Refusal) -> Refusal:
        self.refused[why] += 1
        return why

    def describe(self, why: Refusal, what: str) -> str:
        """Say which cap refused a `what` (e.g. 'live streams'), and what to do."""
        if why is Refusal.CLIENT:
            return (
                f"this client address holds {self.per_client} {what} already, the most one may; "
                "close one, or retry later"
            )
        return f"the server holds {self.total} {what}, the most it takes; retry later"


@dataclass(slots=True)
class Dropped:
    """Connections the server closed on a client that was too slow, by reason."""

    slow_head: int = 0  # sent no complete request head within the header timeout
    slow_reader: int = 0  # read nothing of what was sent for the write timeout
