"""`streetsense demo`: the whole city on embedded defaults (module top imports stdlib only)."""

from __future__ import annotations

import argparse
import re
from typing import Final

_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION_RE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*\Z")


def parse_duration(text: str) -> float:
    """Parse `90`, `90s`, `15m`, `2h`, `28d` or `1w` into seconds.

    Raises:
        argparse.ArgumentTypeError: the text is not such a duration.
    """
    match = _DURATION_RE.match(text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write a number with s, m, h, d or w (e.g. 28d, 60s)"
        )
    return float(match[1]) * _UNITS[match[2]]


def parse_speed(text: str) -> float:
    """Parse a speed-up of at least 1 (live data cannot be slowed down or run ahead).

    Raises:
        argparse.ArgumentTypeError: the text is not a number of at least 1.
    """
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed >= 1.0:
        raise argparse.ArgumentTypeError(f"--speed {text!r}: give a number of at least 1, e.g. 60")
    return speed


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the whole city (simulated devices, ingest, analytics, feeds, dashboard)",
        description="Run the whole city on embedded defaults: an in-process MQTT broker and a "
        "private PostgreSQL unless STREETSENSE_MQTT_URL / STREETSENSE_DATABASE_URL (or the "
        "config file) name real ones. Ctrl-C stops everything cleanly.",
    )
    parser.add_argument("--lots", type=int, default=12, help="parking lots (default 12)")
    parser.add_argument("--segments", type=int, default=8, help="road segments (default 8)")
    parser.add_argument(
        "--history",
        type=parse_duration,
        default=parse_duration("28d"),
        help="history to backfill before going live (default 28d; 0 for none)",
    )
    parser.add_argument(
        "--speed",
        type=parse_speed,
        default=1.0,
        help="simulated seconds per real second for the first two minutes live: the last "
        "(X-1)x2 minutes (at most 12 h) of the city play at this speed, then it runs in real "
        "time (live readings never run ahead of the clock; default 1)",
    )
    parser.add_argument(
        "--agent-lots",
        type=int,
        default=2,
        help="lots whose gateway or counter runs as a real edge agent (default 2)",
    )
    parser.add_argument(
        "--agent-segments",
        type=int,
        default=1,
        help="segments whose traffic counter runs as a real edge agent (default 1)",
    )
    parser.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="stop cleanly (exit 0) after this long live, e.g. 60s; default: until Ctrl-C",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open the dashboard")
    parser.add_argument(
        "--fresh", action="store_true", help="delete the embedded demo data and start over"
    )
    parser.add_argument(
        "--dashboard-port", type=int, default=None,
        help="default: 8501, or a free port when 8501 is taken (the demo says which)",
    )  # fmt: skip
    parser.add_argument(
        "--feeds-port", type=int, default=None,
        help="default: 8000, or a free port when 8000 is taken (the demo says which)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where the demo keeps its database, city and logs (default: the user data folder)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated city")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from streetsense.demo.runner import DemoOptions, run_demo  # noqa: PLC0415

    return run_demo(DemoOptions.from_args(args))
