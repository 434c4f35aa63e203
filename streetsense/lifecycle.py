"""Clean shutdown on SIGINT and SIGTERM for long-running services."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Final

log = logging.getLogger(__name__)
# Set by a supervisor (`streetsense demo`) for its children: the pid they must not outlive.
PARENT_ENV: Final = "STREETSENSE_PARENT_PID"
_PR_SET_PDEATHSIG: Final = 1


def follow_parent() -> None:
    """Get SIGTERM when the supervisor that started this process dies (Linux), if it asked.

    A supervisor killed with SIGKILL cannot stop its children; without this they run on as
    orphans, holding ports and the broker. The kernel delivers the signal; this process then
    shuts down as on any SIGTERM.
    """
    wanted = os.environ.get(PARENT_ENV)
    if not wanted or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
            log.debug("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
            return
    except (OSError, AttributeError) as exc:
        log.debug("cannot ask to follow the parent process: %s", exc)
        return
    if str(os.getppid()) != wanted:
        # The supervisor died before the request took effect: nobody will signal us.
        os.kill(os.getpid(), signal.SIGTERM)


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
