"""The public /health says healthy or not, nothing more: no database host, port, role or error
text for anyone to read (issue 14 showed the database's error to every client). The details
are on the operators' side: the metrics port and the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from harness.services import free_port
from streetsense.config import Settings, with_overrides
from tests.feeds.conftest import Server, feeds_settings


def test_health_tells_the_public_nothing_but_the_state(
    settings: Settings, start_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    nowhere = f"postgresql://secret_role@127.0.0.1:{port}/city_db"
    down = with_overrides(feeds_settings(settings), database={"url": nowhere})
    caplog.set_level(logging.WARNING, logger="feeds.engine")
    server = start_server(down, healthy=False)
    deadline = time.monotonic() + 20
    while not server.metric("streetsense_feeds_refresh_failures_total"):
        assert time.monotonic() < deadline, "the feeds never tried the database"
        time.sleep(0.05)
    with server.client() as client:
        health = client.get("/health")
        head = client.head("/health")
    assert health.status_code == head.status_code == 503
    assert health.content == b'{"status":"degraded"}'
    for secret in (str(port), "secret_role", "city_db", "127.0.0.1", "connection"):
        assert secret not in health.text
        assert secret not in str(health.headers)
    # Operators see why: the metrics say the database is unreachable, the log names it.
    assert server.metric("streetsense_feeds_database_ok") == 0
    assert str(port) in caplog.text


def test_health_of_a_current_server_says_ok_and_nothing_else(feeds: Server) -> None:
    with feeds.client() as client:
        health = client.get("/health")
    assert (health.status_code, health.content) == (200, b'{"status":"ok"}')
    assert health.headers["cache-control"] == "no-store"
    assert feeds.metric("streetsense_feeds_healthy") == 1
    assert feeds.metric("streetsense_feeds_database_ok") == 1
