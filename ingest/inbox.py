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
    """A list the network thread appends to and the batcher takes whole: one batch at most.

    The broker should bound it (MQTT 5 receive maximum, or its in-flight limit for 3.1.1), but
    Mosquitto 2.0.11 keeps that limit only until the first PUBACK and then sends its whole queue
    (tests/ingest/test_faults.py). So `put` waits while a full batch (`flush_at`) is waiting:
    the network thread stops reading, and TCP holds the broker back.
    """

    def __init__(self, flush_at: int) -> None:
        self.flush_at = max(1, flush_at)
        self._items: list[Message] = []
        self._first = 0.0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # a batch is ready
        self._room = threading.Condition(self._lock)  # the batcher took what was waiting
        self._closed = False

    def put(self, message: Message) -> None:
        """Append a message, waiting while the inbox is full; wake the batcher at a batch."""
        with self._lock:
            while len(self._items) >= self.flush_at and not self._closed:
                self._room.wait(1.0)
            if not self._items:
                self._first = time.monotonic()
            self._items.append(message)
            if len(self._items) == self.flush_at:
                self._cond.notify()

    def close(self) -> None:
        """Stop making `put` wait (nobody takes any more: the service is stopping)."""
        with self._lock:
            self._closed = True
            self._room.notify_all()

    def take(self, max_age_s: float, stop: threading.Event) -> list[Message]:
        """Wait for a full batch or for the oldest message to reach max_age_s; take them."""
        with self._lock:
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
            self._room.notify_all()
            return items

    def depth(self) -> tuple[int, float]:
        """Return how many messages wait and the age of the oldest, in seconds."""
        with self._lock:
            age = time.monotonic() - self._first if self._items else 0.0
            return len(self._items), age
