"""`streetsense fleet release ...` and `streetsense fleet rollout ...`: make, sign and publish
release bundles of the edge agent, and roll them out in waves."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    Actions = argparse._SubParsersAction[argparse.ArgumentParser]


def register(actions: Actions) -> None:
    """Add `release` and `rollout` to `streetsense fleet`."""
    from fleet import cli  # noqa: PLC0415

    release = actions.add_parser("release", help="build, sign and publish agent releases")
    steps = release.add_subparsers(dest="release_command", metavar="STEP", required=True)
    key = steps.add_parser("key", help="make the city's release key pair (Ed25519, openssl)")
    key.add_argument("--private-key", required=True, help="new file (mode 600): keep it offline")
    key.add_argument("--public-key", required=True, help="new file: goes onto every device")
    key.set_defaults(handler=run_key)
    build = steps.add_parser("build", help="pack the agent as an unsigned bundle")
    build.add_argument("version", metavar="VERSION", help="1 to 4 dot-separated numbers")
    build.add_argument("--out", required=True, help="the bundle file to write")
    build.add_argument("--source", help="folder with edge/ and streetsense/ (default: installed)")
    build.add_argument("--config", help="default agent config (default: the example)")
    build.add_argument("--notes", default="", help="what changed (kept in the manifest)")
    build.set_defaults(handler=run_build)
    sign = steps.add_parser("sign", help="sign a bundle with the city's release key")
    sign.add_argument("bundle", metavar="BUNDLE")
    sign.add_argument("--key", required=True, help="the release private key (PEM)")
    sign.add_argument("--out", help="signed bundle (default: replace BUNDLE)")
    sign.set_defaults(handler=run_sign)
    publish = steps.add_parser("publish", help="check a signed bundle and offer it to devices")
    publish.add_argument("bundle", metavar="BUNDLE")
    cli._who(publish)
    publish.set_defaults(handler=run_publish)
    listing = steps.add_parser("list", help="published releases and how many devices run each")
    cli._json(listing)
    listing.set_defaults(handler=run_list)
    _rollout(actions)


def _rollout(actions: Actions) -> None:
    from fleet import cli  # noqa: PLC0415

    rollout = actions.add_parser("rollout", help="roll a release out: canary, then waves")
    steps = rollout.add_subparsers(dest="rollout_command", metavar="STEP", required=True)
    start = steps.add_parser("start", help="start rolling a published release out")
    start.add_argument("version", metavar="VERSION")
    start.add_argument("--canary", type=float, default=0.05, help="share of devices first")
    start.add_argument("--waves", type=int, default=3, help="waves after the canary")
    start.add_argument(
        "--deadline",
        type=float,
        default=600.0,
        help="seconds a device has to confirm a reading on the new release",
    )
    start.add_argument("--soak", type=float, default=300.0,
                       help="seconds a wave must stay healthy before the next starts")  # fmt: skip
    start.add_argument("--max-failures", type=int, default=0, help="failed devices tolerated")
    start.add_argument("--site", help="only this site's devices")
    cli._who(start)
    start.set_defaults(handler=run_start)
    status = steps.add_parser("status", help="a rollout's waves and each device's progress")
    status.add_argument("--rollout", type=int, help="rollout id (default: the latest)")
    cli._json(status)
    status.set_defaults(handler=run_status)
    stop = steps.add_parser("stop", help="stop the rollout under way")
    stop.add_argument("--reason", default="", help="kept in the audit log")
    cli._who(stop)
    stop.set_defaults(handler=run_stop)


def run_key(args: argparse.Namespace) -> int:
    """Make the release key pair."""
    from pathlib import Path  # noqa: PLC0415

    from streetsense.signature import generate_key  # noqa: PLC0415

    generate_key(Path(args.private_key), Path(args.public_key))
    sys.stdout.write(
        f"release key in {args.private_key} (keep it off the servers); public key in "
        f"{args.public_key}: set fleet.release_key_file to it on devices and the fleet\n"
    )
    return 0


def run_build(args: argparse.Namespace) -> int:
    """Write an unsigned bundle."""
    from pathlib import Path  # noqa: PLC0415

    from fleet.bundles import build, default_source  # noqa: PLC0415

    source = Path(args.source) if args.source else default_source()
    manifest, data = build(args.version, source, Path(args.config) if args.config else None,
                           args.notes)  # fmt: skip
    Path(args.out).write_bytes(data)
    sys.stdout.write(
        f"release {manifest.version}: {args.out} ({len(data)} bytes, agent {manifest.agent_bytes}"
        f" bytes, needs {', '.join(f'{k} {v}' for k, v in sorted(manifest.requires.items()))});"
        " unsigned: sign it with `streetsense fleet release sign`\n"
    )
    return 0


def run_sign(args: argparse.Namespace) -> int:
    """Sign a bundle."""
    from pathlib import Path  # noqa: PLC0415

    from fleet.bundles import read, sign  # noqa: PLC0415

    signed = sign(read(Path(args.bundle)), Path(args.key))
    out = Path(args.out or args.bundle)
    out.write_bytes(signed)
    sys.stdout.write(f"signed: {out}\n")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Check a bundle with the fleet's release public key, then publish it (retained)."""
    from pathlib import Path  # noqa: PLC0415

    from fleet import cli  # noqa: PLC0415
    from fleet.bundles import read  # noqa: PLC0415
    from fleet.rollouts import publish_release  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415
    from streetsense.release_bundle import check  # noqa: PLC0415

    settings = cli._settings(args)
    if not settings.fleet.release_key_file:
        raise ConfigError("set fleet.release_key_file (the release public key) to publish")
    data = read(Path(args.bundle))
    manifest, _bundle = check(data, Path(settings.fleet.release_key_file), "0")
    fleet = cli._open(args)
    try:
        release = publish_release(fleet, data, manifest, cli._by(args))
    finally:
        cli._close(fleet)
    sys.stdout.write(f"release {release.version} published ({release.bytes} bytes, sha256 "
                     f"{release.sha256[:12]}...)\n")  # fmt: skip
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print the published releases."""
    from fleet import cli  # noqa: PLC0415
    from store import fleet_rollouts  # noqa: PLC0415

    with cli._database(args) as conn:
        table = fleet_rollouts.releases(conn)
    cli._print(table, args.json, ("version", "bytes", "published_at", "published_by", "devices"))
    return 0


def run_start(args: argparse.Namespace) -> int:
    """Start a rollout."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fleet import cli  # noqa: PLC0415
    from fleet.rollouts import start_rollout  # noqa: PLC0415
    from store.fleet_rollouts import Rollout  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    if not 0 < args.canary <= 1 or not 1 <= args.waves <= 100 or args.max_failures < 0:
        raise ConfigError("--canary is a share in (0, 1], --waves 1 to 100, --max-failures >= 0")
    if not 5 <= args.deadline <= 86_400 or args.soak < 0:
        raise ConfigError("--deadline is 5 to 86400 seconds, --soak at least 0")
    plan = Rollout(0, args.version, "running", args.site, args.canary, args.waves,
                   args.deadline, args.soak, args.max_failures, 0, None, datetime.now(UTC),
                   cli._by(args), "")  # fmt: skip
    fleet = cli._open(args)
    try:
        rollout_id, count = start_rollout(fleet, plan)
    finally:
        cli._close(fleet)
    sys.stdout.write(f"rollout {rollout_id} of {args.version} started: {count} devices; the "
                     "fleet service commands the canary now\n")  # fmt: skip
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print a rollout and its devices."""
    from fleet import cli  # noqa: PLC0415
    from store import fleet_rollouts  # noqa: PLC0415

    with cli._database(args) as conn:
        rollout = fleet_rollouts.rollout(conn, args.rollout)
        if rollout is None:
            sys.stdout.write("no rollout yet\n")
            return 0
        counts = fleet_rollouts.summary(conn, rollout.rollout_id)
        waves = fleet_rollouts.wave_count(conn, rollout.rollout_id)
        table = fleet_rollouts.progress(conn, rollout.rollout_id)
    if not args.json:
        shown = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        sys.stdout.write(
            f"rollout {rollout.rollout_id} of {rollout.version}: {rollout.state}, wave "
            f"{rollout.wave} of {waves - 1} (0 is the canary); {shown}"
            + (f"; {rollout.reason}" if rollout.reason else "")
            + f"; started {rollout.started_at:%Y-%m-%d %H:%M:%S} by {rollout.started_by}\n"
        )
    cli._print(table, args.json, ("device_id", "site_id", "wave", "state", "from_version",
                                  "running", "changed_at", "reason"))  # fmt: skip
    return 0


def run_stop(args: argparse.Namespace) -> int:
    """Stop the rollout under way."""
    from fleet import cli  # noqa: PLC0415
    from fleet.rollouts import stop_rollout  # noqa: PLC0415

    fleet = cli._open(args)
    try:
        stopped = stop_rollout(fleet, cli._by(args), args.reason)
    finally:
        cli._close(fleet)
    sys.stdout.write(f"rollout {stopped.rollout_id} of {stopped.version} stopped\n")
    return 0
