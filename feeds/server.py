"""The feeds' HTTP server: uvicorn with our connection guards, timeouts and shutdown.

`streetsense feeds serve` and the tests start the server from here, so what is tested is what
runs.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from feeds.app import create_app
from feeds.connections import Guards, guarded_protocol
from feeds.metrics import FeedsMetrics
from feeds.runtime import Runtime
from streetsense.config import Settings
from streetsense.listen import listen_error

# Live streams never end by themselves; give them a moment, then close them.
GRACEFUL_S = 3


def server_config(app: FastAPI, host: str, port: int, **options: Any) -> uvicorn.Config:
    """Return the uvicorn settings of the feeds server for `app` (options override them)."""
    runtime: Runtime = app.state.runtime
    feeds = runtime.settings.feeds
    guards = Guards(
        connections=runtime.connections,
        dropped=runtime.dropped,
        header_timeout_s=feeds.header_timeout_s,
        write_timeout_s=feeds.write_timeout_s,
    )
    defaults: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": guarded_protocol(guards),
        "timeout_keep_alive": feeds.idle_timeout_s,
        "log_config": None,
        "access_log": False,  # no client addresses in the logs
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_S,
    }
    return uvicorn.Config(app, **(defaults | options))


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the feeds until SIGINT/SIGTERM: the HTTP server, and metrics on their own port.

    Raises:
        ConfigError: a setting is unusable, or a port is taken (named, with its setting).
    """
    app = create_app(settings)
    listener = _listen(host, port)
    metrics = FeedsMetrics(app.state.runtime)
    try:
        metrics.serve(settings.feeds.metrics_host, settings.feeds.metrics_port)
        FeedsServer(server_config(app, host, port)).run(sockets=[listener])
    finally:
        metrics.close()
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """Bind the HTTP port ourselves: uvicorn reports a taken port in several log lines."""
    try:
        return socket.create_server((host, port), backlog=2048)
    except OSError as exc:
        raise listen_error("feeds.port", host, port, exc, option="--port", optional=False) from exc


class FeedsServer(uvicorn.Server):
    """uvicorn's server that ends the live streams first when asked to stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """End live streams (they never end by themselves), then let uvicorn drain the rest."""
        loaded = self.config.app
        if isinstance(loaded, FastAPI):
            loaded.state.runtime.close_streams_soon()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop on SIGINT/SIGTERM, then return normally.

        uvicorn raises the signal again once it has shut down, so the process would die by it
        (exit -15 to its supervisor) after a clean stop; our services exit 0 after one.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
