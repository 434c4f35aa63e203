"""The agent's own health: CPU, memory and temperature from /proc and /sys where they exist."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from typing import Final

THERMAL_ZONE: Final = Path("/sys/class/thermal/thermal_zone0/temp")
STATM: Final = Path("/proc/self/statm")


class Health:
    """Sample process CPU share (of one core) and resident memory between calls."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self._cpu_at = time.monotonic()
        self._cpu_used = _cpu_seconds()

    def uptime(self) -> float:
        """Return seconds since the agent started."""
        return time.monotonic() - self.started

    def cpu_percent(self) -> float:
        """Return the CPU share of one core used since the previous call, in %."""
        now, used = time.monotonic(), _cpu_seconds()
        elapsed = max(now - self._cpu_at, 1e-6)
        share = 100.0 * (used - self._cpu_used) / elapsed
        self._cpu_at, self._cpu_used = now, used
        return min(100.0, max(0.0, share))


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def memory_bytes() -> float:
    """Return the resident set size now (peak where /proc is missing)."""
    try:
        resident_pages = int(STATM.read_text().split()[1])
        return float(resident_pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def temperature() -> float | None:
    """Return the SoC temperature in Celsius where the platform exposes it."""
    try:
        return int(THERMAL_ZONE.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None
