"""`streetsense feeds serve [--host H] [--port P]`: the open feeds API."""

from __future__ import annotations

import argparse
import logging
from types import FrameType

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `feeds` command."""
    feeds = subparsers.add_parser("feeds", help="open parking and traffic feeds")
    actions = feeds.add_subparsers(dest="feeds_action", required=True)
    serve = actions.add_parser("serve", help="serve the HTTP API, live stream and MQTT republish")
    serve.add_argument("--host", help="bind address (default: feeds.host)")
    serve.add_argument("--port", type=int, help="HTTP port (default: feeds.port)")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415  (keep the CLI light)

    from feeds.app import create_app  # noqa: PLC0415
    from store.db import require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config)
    require_url(settings.database)
    host = args.host or settings.feeds.host
    port = args.port or settings.feeds.port
    log.info("serving the open feeds on http://%s:%d (docs at /docs)", host, port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        # Live streams never end by themselves; give them a moment, then close them.
        timeout_graceful_shutdown=3,
    )

    class FeedsServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Live streams never end by themselves: end them, then let uvicorn drain the rest.
            app.state.runtime.close_streams_soon()
            super().handle_exit(sig, frame)

    FeedsServer(config).run()
    return 0
