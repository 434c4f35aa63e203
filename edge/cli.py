"""`streetsense-edge run | check | status`: the field engineer's commands (and `agent`, what
the launcher runs: one release of the agent in this process)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

DEFAULT_CONFIG = "/etc/streetsense-edge/agent.toml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the edge agent's command line."""
    parser = argparse.ArgumentParser(
        prog="streetsense-edge", description="streetsense edge agent for field devices"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, text in (
        ("run", _run, "run the agent (under the launcher when it takes updates)"),
        ("agent", _agent, "run this release of the agent in this process, no launcher"),
        ("check", _check, "check the config, the broker, TLS and credentials"),
        ("status", _status, "show the running agent's buffer and link"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--config", default=DEFAULT_CONFIG, help="agent TOML file")
        sub.set_defaults(handler=handler)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    code: int = args.handler(args)
    return code


def _run(args: argparse.Namespace) -> int:
    import os  # noqa: PLC0415

    from edge.config import load_config  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        fleet = load_config(args.config).fleet
    except ConfigError as exc:
        sys.stderr.write(f"streetsense-edge: {exc}\n")
        return 2
    if not fleet.release_key_file:
        return _agent(args)  # no updates taken: no launcher needed
    # the launcher replaces this process (same pid for systemd), without the CLI's imports
    launcher = [sys.executable, "-m", "edge.launcher", args.config, fleet.releases_dir,
                args.log_level]  # fmt: skip
    os.execv(sys.executable, launcher)  # noqa: S606 (our own program)


def _agent(args: argparse.Namespace) -> int:
    from edge.start import build_agent  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415
    from streetsense.lifecycle import StopSignal, follow_parent  # noqa: PLC0415

    stop = StopSignal().install()
    follow_parent()  # under the launcher (or the demo): stop when it dies
    try:
        agent = build_agent(args.config, stop)
    except ConfigError as exc:
        sys.stderr.write(f"streetsense-edge: {exc}\n")
        return 2
    return 0 if agent is None else agent.run()


def _check(args: argparse.Namespace) -> int:
    from edge.check import run_checks  # noqa: PLC0415

    ok = True
    for passed, line in run_checks(args.config):
        sys.stdout.write(f"{'ok  ' if passed else 'FAIL'}  {line}\n")
        ok = ok and passed
    sys.stdout.write("all checks passed\n" if ok else "some checks failed: see the fixes above\n")
    return 0 if ok else 1


def _status(args: argparse.Namespace) -> int:
    from edge.config import load_config  # noqa: PLC0415
    from edge.state import describe, read_state  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        state = read_state(load_config(args.config).state_path)
    except ConfigError as exc:
        sys.stderr.write(f"streetsense-edge: {exc}\n")
        return 2
    sys.stdout.write("\n".join(describe(state)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
