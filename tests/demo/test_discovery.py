"""`streetsense doctor` with nothing configured checks the demo running on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streetsense.demo import discovery

REPO = Path(__file__).resolve().parents[2]


def doctor(data_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `streetsense doctor` with no STREETSENSE_* settings and this user data folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env |= {"PYTHONPATH": str(REPO), "XDG_DATA_HOME": str(data_home)}
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "doctor", *args],
        capture_output=True, text=True, env=env, cwd=data_home, timeout=120, check=False,
    )  # fmt: skip


def running_demo(
    data_home: Path, pid: int, database_url: str, broker: str, data_dir: Path | None = None
) -> Path:
    """Write the running.json a demo with these services writes (default: the default folder)."""
    data_dir = data_dir or data_home / "streetsense" / "demo"
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


def test_doctor_checks_a_demo_in_another_data_folder_when_told_where(
    tmp_path: Path, database_url: str, broker: str
) -> None:
    elsewhere = tmp_path / "field-demo"
    running_demo(tmp_path, os.getpid(), database_url, broker, data_dir=elsewhere)
    assert "running demo" not in doctor(tmp_path).stdout  # not in the default folder
    result = doctor(tmp_path, "--data-dir", str(elsewhere))
    assert f"data in {elsewhere}" in result.stdout, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout and result.returncode == 0


def test_doctor_says_when_no_demo_runs_from_the_folder_given(tmp_path: Path) -> None:
    result = doctor(tmp_path, "--data-dir", str(tmp_path / "nothing-here"))
    assert "no demo runs from" in result.stdout and "--data-dir" in result.stdout
    assert result.returncode == 1
