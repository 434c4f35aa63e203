"""Messages handed from the MQTT network thread to the batching thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Message:
    """One received MQTT message, not yet acknowledged to the broker."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received: float  # epoch seconds
    generation: int  # which broker connection delivered it (its mid is only valid there)


class Inbox:
    """A list the network thread appends to and the batcher takes whole.

    Its size is bounded by the broker: MQTT 5 receive maximum (or the broker's in-flight limit
    for 3.1.1) caps how many unacknowledged messages the broker sends us.
    """

    def __init__(self, flush_at: int) -> None:
        self.flush_at = max(1, flush_at)
        self._items: list[Message] = []
        self._first = 0.0
        self._cond = threading.Condition()

    def put(self, message: Message) -> None:
        """Append a message; wake the batcher when a batch is full."""
        with self._cond:
            if not self._items:
                self._first = time.monotonic()
            self._items.append(message)
            if len(self._items) == self.flush_at:
                self._cond.notify()

    def take(self, max_age_s: float, stop: threading.Event) -> list[Message]:
        """Wait for a full batch or for the oldest message to reach max_age_s; take them."""
        with self._cond:
            while len(self._items) < self.flush_at:
                if stop.is_set():
                    break
                if self._items:
                    remaining = self._first + max_age_s - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    self._cond.wait(0.1)
            items, self._items = self._items, []
            return items

    def depth(self) -> tuple[int, float]:
        """Return how many messages wait and the age of the oldest, in seconds."""
        with self._cond:
            age = time.monotonic() - self._first if self._items else 0.0
            return len(self._items), age
