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
# The pip extra that installs what each room's commands import (pyproject.toml).
ROOM_EXTRAS: Final = {
    "store": "server",
    "ingest": "server",
    "analytics": "server",
    "edge": "edge",
    "simulators": "simulators",
    "dashboard": "dashboard",
    "feeds": "feeds",
    "alerts": "server",
    "fleet": "server",
}


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
            # An edge-only install lacks the server rooms: say what would bring the command.
            _register_unavailable(subparsers, entry.name, entry.value, exc)
            continue
        register(subparsers)
    return parser


def _register_unavailable(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    target: str,
    error: ImportError,
) -> None:
    """Keep a command whose room cannot be imported in --help, with the install that fixes it."""
    extra = ROOM_EXTRAS.get(target.split(".", 1)[0], "all")
    reason = (
        f"unavailable: {error}; install it with: pip install 'streetsense[{extra}]'"
        if isinstance(error, ModuleNotFoundError)
        else f"unavailable: {error}"
    )
    # no options of its own (not even -h): whatever follows is taken, and the reason shown
    parser = subparsers.add_parser(name, help=f"({reason})", add_help=False, prefix_chars="\0")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def handler(_args: argparse.Namespace) -> int:
        log.error("streetsense %s is %s", name, reason)
        return EXIT_USAGE

    parser.set_defaults(handler=handler)


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
    except ModuleNotFoundError as exc:
        # a room's optional dependency, imported when its command runs
        extra = ROOM_EXTRAS.get(handler.__module__.split(".", 1)[0], "all")
        log.error(
            "streetsense %s needs %s, which is not installed; install it with: "
            "pip install 'streetsense[%s]'",
            args.command,
            exc.name or exc,
            extra,
        )
        return EXIT_USAGE
    except StreetsenseError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.info("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
