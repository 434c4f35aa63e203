"""A port another process holds stops the service with one line naming the setting and the fix,
not a traceback (issue 14: ingest died with a raw traceback; uvicorn logged several lines)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

SETTINGS = {
    "ingest": ("ingest.metrics_port", "STREETSENSE_INGEST_METRICS_PORT"),
    "feeds": ("feeds.metrics_port", "STREETSENSE_FEEDS_METRICS_PORT"),
    "alerts": ("alerts.metrics_port", "STREETSENSE_ALERTS_METRICS_PORT"),
    "feeds-http": ("feeds.port", "STREETSENSE_FEEDS_PORT"),
}
COMMANDS = {
    "ingest": ["ingest"],
    "feeds": ["feeds", "serve"],
    "alerts": ["alerts", "run"],
    "feeds-http": ["feeds", "serve"],
}


@pytest.mark.parametrize("service", list(SETTINGS))
def test_a_taken_port_is_one_line_naming_the_setting(service: str, database_url: str) -> None:
    setting, variable = SETTINGS[service]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
        env |= {
            "STREETSENSE_DATABASE_URL": database_url,
            "STREETSENSE_MQTT_URL": "mqtt://127.0.0.1:1",  # never reached: metrics come first
            variable: str(port),
        }
        # The service's other port: any free one, so only the squatted port can fail.
        other = (
            "STREETSENSE_FEEDS_METRICS_PORT"
            if service == "feeds-http"
            else "STREETSENSE_FEEDS_PORT"
        )
        env[other] = "0"
        done = subprocess.run(
            [sys.executable, "-m", "streetsense.cli", *COMMANDS[service]],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"cannot listen on 127.0.0.1:{port} for {setting}" in errors[0]
    assert variable in errors[0] and "another process" in errors[0]
