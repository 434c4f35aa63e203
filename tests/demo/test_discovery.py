"""`streetsense doctor` with nothing configured checks the demo running on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streetsense.demo import discovery

REPO = Path(__file__).resolve().parents[2]


def doctor(data_home: Path) -> subprocess.CompletedProcess[str]:
    """Run `streetsense doctor` with no STREETSENSE_* settings and this user data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env |= {"PYTHONPATH": str(REPO), "XDG_DATA_HOME": str(data_home)}
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "doctor"],
        capture_output=True, text=True, env=env, cwd=data_home, timeout=120, check=False,
    )  # fmt: skip


def running_demo(data_home: Path, pid: int, database_url: str, broker: str) -> Path:
    """Write the running.json a demo with these services writes in the default data folder."""
    data_dir = data_home / "streetsense" / "demo"
    data_dir.mkdir(parents=True)
    discovery.RunningDemo(
        pid=pid, data_dir=str(data_dir), dashboard="http://127.0.0.1:8501",
        feeds="http://127.0.0.1:8000", broker=broker, database=database_url,
        agent_config=str(data_dir / "edge-agent.toml"),
        settings={"STREETSENSE_DATABASE_URL": database_url, "STREETSENSE_MQTT_URL": broker},
    ).write()  # fmt: skip
    return data_dir


def test_doctor_checks_the_running_demo_when_nothing_is_configured(
    tmp_path: Path, database_url: str, broker: str
) -> None:
    running_demo(tmp_path, os.getpid(), database_url, broker)
    result = doctor(tmp_path)
    assert "checking the running demo" in result.stdout, result.stdout + result.stderr
    assert "[  ok] schema: version" in result.stdout
    assert "0 problem(s)" in result.stdout
    assert result.returncode == 0


def test_a_demo_that_is_gone_is_not_checked(tmp_path: Path, database_url: str, broker: str) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    data_dir = running_demo(tmp_path, gone.pid, database_url, broker)
    assert discovery.find(data_dir) is None
    result = doctor(tmp_path)
    assert "running demo" not in result.stdout
    assert "[FAIL] database: no database configured" in result.stdout
