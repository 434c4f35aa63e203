"""The `streetsense` command: sub-commands are plugged in by the rooms that own them.

Each entry point in the `streetsense.commands` group is `register(subparsers) -> None` and sets
`handler(args) -> int` on its parser; the kernel itself imports nothing of ours.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Final

from streetsense import __version__
from streetsense.errors import StreetsenseError
from streetsense.lifecycle import follow_parent

log = logging.getLogger(__name__)
COMMAND_GROUP: Final = "streetsense.commands"
EXIT_USAGE: Final = 2


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr with UTC timestamps, once per process."""
    logging.Formatter.converter = __import__("time").gmtime
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)sZ %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with every plugged-in sub-command."""
    parser = argparse.ArgumentParser(
        prog="streetsense", description="Smart-city sensor ingestion and analytics."
    )
    parser.add_argument("--version", action="version", version=f"streetsense {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: $STREETSENSE_CONFIG, then "
        "./streetsense.toml); STREETSENSE_<SECTION>_<KEY> variables override it",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        try:
            register = entry.load()
        except ImportError as exc:
            # An edge-only install lacks the server rooms; their commands are simply absent.
            log.debug("command %s unavailable: %s", entry.name, exc)
            continue
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `streetsense` command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    follow_parent()
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args))
    except StreetsenseError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
