"""`streetsense dashboard [--port P] [--host H]`: run the planners' dashboard with Streamlit."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)
ENTRY = Path(__file__).resolve().parent / "app.py"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `dashboard` command."""
    parser = subparsers.add_parser(
        "dashboard",
        help="run the planners' dashboard (Streamlit)",
        description="Serve the planners' dashboard. It binds to 127.0.0.1 unless told "
        "otherwise; put it behind login (docs/dashboard.md) before exposing it.",
    )
    parser.add_argument("--port", type=int, default=None, help="HTTP port (dashboard.port)")
    parser.add_argument("--host", default=None, help="bind address (dashboard.host)")
    parser.set_defaults(handler=run)


def streamlit_environment(
    config: str | None, host: str, port: int, base: dict[str, str]
) -> dict[str, str]:
    """Return the environment the Streamlit process runs with: our settings and its own."""
    env = dict(base)
    if config:
        env["STREETSENSE_CONFIG"] = str(Path(config).resolve())
    env.update({
        "STREETSENSE_DASHBOARD_HOST": host,
        "STREETSENSE_DASHBOARD_PORT": str(port),
        "STREAMLIT_SERVER_ADDRESS": host,
        "STREAMLIT_SERVER_PORT": str(port),
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        "STREAMLIT_CLIENT_TOOLBAR_MODE": "viewer",
    })  # fmt: skip
    return env


def run(args: argparse.Namespace) -> int:
    """Check the settings, then run `streamlit run` on the entry file until stopped."""
    from streetsense.config import load_settings  # noqa: PLC0415  (keep the CLI light)
    from streetsense.errors import ConfigError  # noqa: PLC0415

    settings = load_settings(args.config)
    if not settings.database.url:
        raise ConfigError(
            "the dashboard needs a database: set STREETSENSE_DATABASE_URL or [database] url "
            "in streetsense.toml"
        )
    host = args.host or settings.dashboard.host
    port = settings.dashboard.port if args.port is None else args.port
    env = streamlit_environment(args.config, host, port, dict(os.environ))
    command = [sys.executable, "-m", "streamlit", "run", str(ENTRY)]
    log.info("dashboard on http://%s:%d/ (Streamlit %s)", host, port, ENTRY)
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
