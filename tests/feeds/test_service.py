"""The service around the API: starting without a database, the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from harness.services import free_port
from streetsense.cli import build_parser
from streetsense.config import Settings, with_overrides
from tests.feeds.conftest import Server, feeds_settings


def test_without_a_database_reads_wait_and_health_says_so(
    settings: Settings, start_server: Callable[..., Server]
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    down = with_overrides(feeds_settings(settings), database={"url": nowhere})
    server = start_server(down, healthy=False)
    with server.client() as client:
        health = client.get("/health")
        lots = client.get("/v1/parking/lots")
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert lots.status_code == 503
    assert lots.headers["content-type"] == "application/problem+json"
    assert int(lots.headers["retry-after"]) > 0


def test_serve_command_takes_host_and_port() -> None:
    args = build_parser().parse_args(["feeds", "serve", "--host", "0.0.0.0", "--port", "8090"])
    assert (args.host, args.port) == ("0.0.0.0", 8090)
    assert callable(args.handler)


def test_sigterm_ends_live_streams_and_exits_zero(database_url: str) -> None:
    """A supervisor's SIGTERM stops the feeds cleanly: open streams end, the process exits 0
    (uvicorn raises the signal again after its shutdown, which made the exit -15)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env |= {
        "STREETSENSE_DATABASE_URL": database_url,
        "STREETSENSE_FEEDS_METRICS_PORT": "0",
        "STREETSENSE_FEEDS_REPUBLISH_MQTT": "false",
    }
    command = [sys.executable, "-m", "streetsense.cli", "feeds", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url + "/health") and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            time.sleep(0.1)
        with (
            httpx.Client(base_url=url, timeout=30) as client,
            client.stream("GET", "/v1/parking/stream") as stream,
        ):
            chunks = stream.iter_bytes()
            assert next(chunks).startswith(b"retry:")
            process.send_signal(signal.SIGTERM)
            rest = b"".join(chunks)  # ends only when the server closes the stream
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert code == 0, stderr
    assert b"retry:" not in rest
    assert "Traceback" not in stderr


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
