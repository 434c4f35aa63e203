"""Clean shutdown on SIGINT and SIGTERM for long-running services."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class StopSignal:
    """A threading.Event set by SIGINT/SIGTERM; services poll it or wait on it."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> StopSignal:
        """Route SIGINT and SIGTERM to this event (call from the main thread)."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.event.is_set():
            log.warning("second %s: stopping now", signal.Signals(signum).name)
            raise KeyboardInterrupt
        log.info("%s received: shutting down cleanly", signal.Signals(signum).name)
        self.event.set()

    @property
    def stopping(self) -> bool:
        """Tell whether a stop was asked for."""
        return self.event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; return True when a stop was asked for meanwhile."""
        return self.event.wait(seconds)

    def stop(self) -> None:
        """Ask for a stop from code (tests, the demo supervisor)."""
        self.event.set()
