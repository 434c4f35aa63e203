"""`streetsense feeds serve [--host H] [--port P]`: the open feeds API."""

from __future__ import annotations

import argparse
import logging

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
    from feeds.server import serve  # noqa: PLC0415  (keep the CLI light)
    from store.db import require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config)
    require_url(settings.database)
    host = args.host or settings.feeds.host
    port = args.port or settings.feeds.port
    log.info("serving the open feeds on http://%s:%d (docs at /docs)", host, port)
    serve(settings, host, port)
    return 0
