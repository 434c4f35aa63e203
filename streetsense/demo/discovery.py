"""Where a running demo can be found: its URLs in `running.json` in its data folder.

The demo writes the file once its services answer and removes it when it stops; the process id
in it tells a demo that was killed outright from one that runs. `streetsense doctor` with no
broker and no database configured checks the demo it finds this way.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

RUNNING_FILE: Final = "running.json"


@dataclass(frozen=True, slots=True)
class RunningDemo:
    """What a running demo serves, and the settings that reach its broker and database."""

    pid: int
    data_dir: str
    dashboard: str
    feeds: str
    broker: str
    database: str
    agent_config: str
    settings: dict[str, str]  # STREETSENSE_* variables its services run with
    metrics: str = ""  # ingest's Prometheus metrics, when on

    def write(self) -> None:
        """Write this demo's running.json in its data folder."""
        path = Path(self.data_dir) / RUNNING_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def clear(data_dir: Path) -> None:
    """Remove a stopped demo's running.json."""
    (data_dir / RUNNING_FILE).unlink(missing_ok=True)


def find(data_dir: Path | None = None) -> RunningDemo | None:
    """Return the demo running from `data_dir` (default: the user's demo folder), or None."""
    if data_dir is None:
        from streetsense.demo.database import default_data_dir  # noqa: PLC0415

        try:
            data_dir = default_data_dir()
        except ImportError:  # platformdirs (the embedded extra) is not installed: no demo
            return None
    try:
        raw = json.loads((data_dir / RUNNING_FILE).read_text(encoding="utf-8"))
        demo = RunningDemo(**raw)
    except (OSError, ValueError, TypeError):
        return None
    return demo if _alive(demo.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
