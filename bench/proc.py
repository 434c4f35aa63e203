"""CPU time of processes on this machine, read from /proc (Linux), for the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

_TICK_S: Final = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of one process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def children(pid: int) -> list[int]:
    """Return the process ids of a process's children (none once it is gone)."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
        return [int(c) for t in threads for c in (t / "children").read_text().split()]
    except OSError:
        return []
