"""The service around the API: starting without a database, the command line."""

from __future__ import annotations

from collections.abc import Callable

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
