"""Run the `streetsense` command line as a user does: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def streetsense(
    database_url: str, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `streetsense ARGS` against a database; return the finished process (never raises)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREETSENSE_")}
    env.update({"STREETSENSE_DATABASE_URL": database_url, "STREETSENSE_DATABASE_TIMESCALE": "off"})
    command = [sys.executable, "-m", "streetsense.cli", *args]
    return subprocess.run(
        command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
