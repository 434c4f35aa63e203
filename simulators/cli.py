"""`streetsense simulate city|run|scenario|load|agents|replay`."""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable

log = logging.getLogger(__name__)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0}


def duration(text: str) -> float:
    """Parse `90s`, `30m`, `6h` or `28d` into seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write e.g. 90s, 30m, 6h, 28d"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


Parser = argparse.ArgumentParser


def register(subparsers: argparse._SubParsersAction[Parser]) -> None:
    """Add the `simulate` command and its sub-commands."""
    simulate = subparsers.add_parser("simulate", help="synthetic city, faults, load, replay")
    actions = simulate.add_subparsers(dest="simulate_action", required=True)
    city = actions.add_parser("city", help="generate a city and write its registry file")
    _city_arguments(city)
    city.set_defaults(handler=_lazy("city"))
    _add_run(actions.add_parser("run", help="publish the city live, after optional history"))
    _add_scenario(actions.add_parser("scenario", help="a stretch of city time with faults"))
    _add_load(actions.add_parser("load", help="benchmark load: many sensors at a set rate"))
    _add_agents(actions.add_parser("agents", help="real edge agents fed by the city models"))
    _add_replay(actions.add_parser("replay", help="replay recorded lot occupancy (CSV)"))


# fmt: off
def _add_run(run: Parser) -> None:
    _city_arguments(run)
    run.add_argument("--backfill", type=duration, default=0.0, metavar="DURATION",
                     help="first publish this much history (e.g. 28d), paced by broker acks")
    _duration_argument(run, "stop the live part after this long (0s: history only)")
    run.add_argument("--catch-up", type=duration, default=0.0, metavar="DURATION",
                     help="start the live part this long ago (the backfill ends there) and "
                     "play it at --speed until it reaches the present (default 0s)")
    run.add_argument("--speed", type=float, default=1.0,
                     help="simulated seconds per wall second while catching up; live data "
                     "never runs ahead of the real clock, so it needs --catch-up")
    run.add_argument("--window", type=int, default=500,
                     help="messages the broker may leave unacknowledged (default 500)")
    _agent_arguments(run, "leave out the devices of")
    run.set_defaults(handler=_lazy("run"))


def _add_scenario(scenario: Parser) -> None:
    _city_arguments(scenario)
    scenario.add_argument("--fault", action="append", default=[], metavar="NAME[:DEVICE]",
                          help="dropout, stuck, flapping, duplicates, out-of-order, "
                          "clock-skew, malformed, offline, incident (repeatable)")
    scenario.add_argument("--length", type=duration, default=3 * 3_600.0, metavar="DURATION",
                          help="simulated time, ending now (default 3h)")
    scenario.add_argument("--speed", type=float, default=0.0,
                          help="simulated seconds per wall second; 0: as fast as acks allow")
    scenario.set_defaults(handler=_lazy("scenario"))


def _add_load(load: Parser) -> None:
    load.add_argument("--sensors", type=int, default=100_000)
    load.add_argument("--rate", type=float, default=5_000.0, help="messages per second")
    load.add_argument("--messages", type=int, default=100_000, help="messages in all")
    load.add_argument("--per-gateway", type=int, default=1, help="spots per message")
    load.add_argument("--window", type=int, default=1_000, help="unacknowledged messages")
    load.add_argument("--registry", metavar="FILE", help="write the load devices' registry here")
    load.set_defaults(handler=_lazy("load"))


def _add_agents(agents: Parser) -> None:
    _city_arguments(agents)
    agents.add_argument("--device", action="append", default=[], metavar="ID",
                        help="device to run an agent for (repeatable); default: one of each kind")
    _agent_arguments(agents, "with no --device: run agents for")
    agents.add_argument("--speed", type=float, default=1.0, help="device clock speed-up")
    _duration_argument(agents, "stop after this long")
    agents.set_defaults(handler=_lazy("agents"))


def _add_replay(replay: Parser) -> None:
    replay.add_argument("file", help="CSV: lot id, capacity, occupancy, timestamp columns")
    replay.add_argument("--days", type=float, default=3.0, help="the last N days of the file")
    replay.add_argument("--keep-weekdays", action="store_true",
                        help="shift by whole weeks (ends up to 7 days ago) instead of days")
    replay.add_argument("--timezone", default="UTC", help="zone of the file's naive times")
    replay.add_argument("--site", default="replay", help="site id of the replayed devices")
    replay.add_argument("--registry", metavar="FILE", help="write the lots' registry file here")
    replay.set_defaults(handler=_lazy("replay"))
# fmt: on


def _agent_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--agent-lots", type=int, default=0, metavar="N",
        help=f"{what} the first N lots' gateways or counters (`simulate agents` runs them)",
    )  # fmt: skip
    parser.add_argument(
        "--agent-segments", type=int, default=0, metavar="M",
        help=f"{what} the first M segments' traffic counters",
    )  # fmt: skip


def _duration_argument(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument(
        "--duration", type=duration, default=None, metavar="DURATION",
        help=f"{text}; default: until interrupted",
    )  # fmt: skip


def _city_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="same seed, same city")
    parser.add_argument("--lots", type=int, default=24)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--site", default="city")
    parser.add_argument("--registry", metavar="FILE", help="write the registry file here")
    parser.add_argument("--state-dir", default=".streetsense-sim", metavar="DIR",
                        help="keeps the devices' sequence numbers between runs")  # fmt: skip


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    """Return a handler that imports numpy and paho only when the command runs."""

    def handle(args: argparse.Namespace) -> int:
        from simulators import cli_handlers  # noqa: PLC0415  (keep `streetsense --help` light)

        result: int = getattr(cli_handlers, name)(args)
        return result

    return handle
