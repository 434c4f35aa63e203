"""Keep repeated refusals bounded: the first of each source and reason per minute whole, the
rest summed in one row.

A flood (a device far over its rate, a stranger inventing ids) used to write one
rejected_messages row per message. Every refusal is still counted (metrics, by reason); the
database keeps `per_window` rows whole per (device, reason) and minute, then one summary row
whose `repeats` says how many more there were. Refusals ingest may replay once their cause is
fixed (ingest.isolate) are never summed: their payloads are needed whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from store.writes import Rejection

WINDOW_S: Final = 60.0
MAX_SOURCES: Final = 100_000


@dataclass(slots=True)
class _Window:
    start: float
    kept: int
    summed: int
    first: Rejection | None  # the first refusal summed, the summary's model
    last_at: datetime | None


class RefusalThrottle:
    """Decide which refusals are kept whole; produce the summaries of the rest."""

    def __init__(self, per_window: int, never: frozenset[str]) -> None:
        self.per_window = per_window
        self.never = never
        self._windows: dict[tuple[str | None, str], _Window] = {}
        # Ingest's classifying thread and its commit thread (unknown devices) both refuse.
        self._lock = threading.Lock()

    def filter(self, rejections: list[Rejection], now: float) -> list[Rejection]:
        """Return the rejections to write: those kept whole, then summaries of closed windows."""
        with self._lock:
            kept = [rejection for rejection in rejections if self._keep(rejection, now)]
            return kept + self._summaries(now, closing=False)

    def summaries(self, now: float, *, closing: bool = False) -> list[Rejection]:
        """Return a row per window that ended (all when `closing`) with refusals summed."""
        with self._lock:
            return self._summaries(now, closing=closing)

    def _summaries(self, now: float, *, closing: bool) -> list[Rejection]:
        rows = []
        for key, window in list(self._windows.items()):
            if closing or now - window.start >= WINDOW_S:
                del self._windows[key]
                if window.summed and window.first is not None and window.last_at is not None:
                    rows.append(_summary(window.first, window.summed, window.last_at))
        return rows

    def _keep(self, rejection: Rejection, now: float) -> bool:
        if rejection.reason_code in self.never or rejection.repeats > 1:
            return True
        key = (rejection.device_id, rejection.reason_code)
        window = self._windows.get(key)
        if window is None or now - window.start >= WINDOW_S:
            if len(self._windows) >= MAX_SOURCES:
                return True  # bounded memory: keep whole rather than forget a count
            window = self._windows[key] = _Window(now, 0, 0, None, None)
        if window.kept < self.per_window:
            window.kept += 1
            return True
        window.summed += 1
        if window.first is None:
            window.first = rejection
        window.last_at = rejection.received_at
        return False


def _summary(first: Rejection, summed: int, last_at: datetime) -> Rejection:
    until = last_at.astimezone(UTC).isoformat(timespec="seconds")
    return replace(
        first,
        reason=(
            f"{summed} more refusals like the one kept at this time ({first.reason_code}: "
            f"{first.reason[:300]}) until {until}; counted, not kept whole "
            "(ingest.refusals_kept_per_minute)"
        ),
        payload=b"",
        record_index=None,
        seq=None,
        repeats=summed,
    )
