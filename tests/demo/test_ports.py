"""The demo's ports: the same ones when free, another one said out loud, a taken one named."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.services import free_port
from streetsense.demo import ports
from streetsense.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_the_default_port_is_used_when_it_is_free() -> None:
    default = free_port()
    assert ports.choose("dashboard", None, default, "--dashboard-port") == (default, "")


def test_a_taken_default_falls_back_and_says_so(taken: int) -> None:
    port, note = ports.choose("dashboard", None, taken, "--dashboard-port")
    assert port != taken and ports.is_free(port)
    assert note == (f"port {taken} is taken, so the dashboard listens on {port} "
                    "(choose one with --dashboard-port)")  # fmt: skip


def test_a_taken_port_asked_for_is_refused_naming_it_and_the_option(taken: int) -> None:
    with pytest.raises(ConfigError, match=f"port {taken} .feeds API. is taken.*--feeds-port"):
        ports.choose("feeds API", taken, ports.FEEDS, "--feeds-port")


def test_the_demo_stops_at_once_with_one_line_when_its_port_is_taken(
    taken: int, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "demo", "--no-browser", "--feeds-port",
         str(taken), "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {taken} (feeds API) is taken" in lines[0]
    assert "--feeds-port" in lines[0]
    assert not (tmp_path / "demo").exists()  # nothing was started
