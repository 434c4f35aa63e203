"""What a demo data folder holds: which city it was prepared for, and how far that city ran.

`state.json` names the city (sizes, seed, history, database); a run with the same city reuses
it without a new backfill. While the city runs, the demo notes the time it has reached
(`live_until`), so the next start fills the hours between the two runs with simulated history
instead of leaving a hole in every chart.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Final

STATE_FILE: Final = "state.json"
LIVE_UNTIL: Final = "live_until"


def _load(data_dir: Path) -> dict[str, Any]:
    try:
        saved = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _save(data_dir: Path, state: dict[str, Any]) -> None:
    path = data_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)  # a demo killed while writing leaves the old file whole


def is_prepared(data_dir: Path, city: dict[str, Any]) -> bool:
    """Tell whether the folder holds this city, loaded and backfilled."""
    saved = _load(data_dir)
    return all(saved.get(key) == value for key, value in city.items())


def mark_prepared(data_dir: Path, city: dict[str, Any], now: float | None = None) -> None:
    """Note that the folder holds this city, with its history up to `now`."""
    _save(data_dir, {**city, LIVE_UNTIL: time.time() if now is None else now})


def mark_live(data_dir: Path, now: float | None = None) -> None:
    """Note that the city has run up to `now`."""
    state = _load(data_dir)
    if state:
        state[LIVE_UNTIL] = time.time() if now is None else now
        _save(data_dir, state)


def gap_s(data_dir: Path, now: float | None = None) -> float:
    """Return how long ago the city last ran (0 when unknown, as before this was noted)."""
    until = _load(data_dir).get(LIVE_UNTIL)
    if not isinstance(until, int | float):
        return 0.0
    return max(0.0, (time.time() if now is None else now) - until)
