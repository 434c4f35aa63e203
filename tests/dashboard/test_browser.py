"""End to end: `streetsense dashboard` serves every page to a real headless Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import simcity
from harness.services import free_port, wait_port
from tests.dashboard.browser import Browser, chromium_binary
from tests.dashboard.conftest import City

PAGES = {
    "city_now": ("", "Spaces free"),
    "parking": ("parking", "Parking pressure and turnover"),
    "traffic": ("traffic", "Congestion ranking"),
    "forecast_quality": ("forecast_quality", "Model chosen per series"),
    "devices": ("devices", "Data freshness"),
    "export": ("export", "Download occupancy_history.csv"),
    "alerts": ("alerts", "Per rule, last 30 days"),
}
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium package"),
]


@pytest.fixture
def dashboard(city: City, tmp_path: Path) -> Iterator[str]:
    """Start the real dashboard through its CLI and return its URL; stop it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env |= {"STREETSENSE_DATABASE_URL": city.url, "STREETSENSE_CITY_TIMEZONE": simcity.TIMEZONE,
            "STREETSENSE_DATABASE_TIMESCALE": "off"}  # fmt: skip
    command = [str(Path(sys.executable).with_name("streetsense")), "dashboard", "--port", str(port)]
    log = (tmp_path / "dashboard.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        wait_port("127.0.0.1", port, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_every_page_loads_in_chromium_without_errors(dashboard: str, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Browser(tmp_path / "chromium") as browser:
        for name, (path, expected) in PAGES.items():
            state = browser.open(f"{dashboard}/{path}", expected)
            browser.screenshot(shots / f"dashboard-{name}.png")
            assert not state["errors"], (name, state["errors"])
            assert expected in state["text"], (name, state["text"][:500])
            assert "Traceback" not in state["text"]
    assert sorted(p.name for p in shots.iterdir()) == sorted(f"dashboard-{n}.png" for n in PAGES)
