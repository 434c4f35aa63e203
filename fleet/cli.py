"""`streetsense fleet`: the service, and a field engineer's and operator's commands."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    Actions = argparse._SubParsersAction[argparse.ArgumentParser]

    from fleet.context import Fleet
    from store.dashboard_reads import Table

log = logging.getLogger(__name__)


def register(subparsers: Actions) -> None:
    """Add `fleet ...` to the `streetsense` command."""
    fleet = subparsers.add_parser(
        "fleet", help="enrol devices, manage their credentials, release and roll out updates"
    )
    actions = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="run the fleet service")
    serve.set_defaults(handler=run_serve)
    _broker(actions)
    _batch(actions)
    _allow(actions)
    pending = actions.add_parser("pending", help="serials waiting for approval, and conflicts")
    _json(pending)
    pending.set_defaults(handler=run_pending)
    approve = _decision(actions, "approve", "let a pending serial enrol", "SERIAL")
    for option, text in (("--device", "device id"), ("--site", "site id"),
                         ("--kind", "parking, counter, traffic or light"), ("--lot", "lot id"),
                         ("--segment", "segment id"), ("--lat", "latitude"),
                         ("--lon", "longitude")):  # fmt: skip
        approve.add_argument(option, help=f"{text} (when the serial is not on the allow-list)")
    approve.add_argument("--spot", action="append", default=[], metavar="SPOT[=SENSOR][:CATEGORY]",
                         help="a spot the device senses (repeat)")  # fmt: skip
    refuse = _decision(actions, "refuse", "refuse a pending serial", "SERIAL")
    refuse.add_argument("--reason", default="", help="told to the device and kept in the audit")
    revoke = _decision(actions, "revoke", "refuse a device from now on (stolen, broken)", "DEVICE")
    revoke.add_argument("--reason", required=True, help="why: kept in the audit log")
    _decision(actions, "rotate", "make a device replace its password now", "DEVICE")
    _decision(actions, "reset", "let a revoked or refused serial enrol anew", "SERIAL")
    devices = actions.add_parser("devices", help="enrolled devices: version, password, health")
    devices.add_argument("--site", help="only this site")
    devices.add_argument("--state", help="only online, offline, never seen, revoked or expired")
    _json(devices)
    devices.set_defaults(handler=run_devices)
    audit = actions.add_parser("audit", help="who did what, when (newest first)")
    audit.add_argument("--subject", help="only this device, serial, batch or release")
    audit.add_argument("--limit", type=int, default=100)
    _json(audit)
    audit.set_defaults(handler=run_audit)
    from fleet.cli_releases import register as register_releases  # noqa: PLC0415

    register_releases(actions)


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", default=None, help="who decides (default: your login name)")


def _decision(actions: Actions, name: str, text: str, subject: str) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=text, description=text)
    parser.add_argument("subject", metavar=subject)
    _who(parser)
    parser.set_defaults(handler=run_decision, action=name)
    return parser


def _broker(actions: Actions) -> None:
    broker = actions.add_parser("broker", help="prepare a broker with dynamic security")
    steps = broker.add_subparsers(dest="broker_command", metavar="STEP", required=True)
    init = steps.add_parser(
        "init", help="deny by default; make the services' roles and clients (needs the admin)"
    )
    init.add_argument("--admin-user", required=True, help="the dynamic security admin client")
    init.add_argument("--admin-password-file", required=True, help="file holding its password")
    init.add_argument(
        "--client", action="append", default=[], metavar="NAME:ROLE:PASSWORD_FILE",
        help="a service client to make: ROLE is fleet, ingest, feeds, operator or public",
    )  # fmt: skip
    init.set_defaults(handler=run_broker_init)


def _batch(actions: Actions) -> None:
    batch = actions.add_parser("batch", help="batches of device images and their secrets")
    steps = batch.add_subparsers(dest="batch_command", metavar="STEP", required=True)
    create = steps.add_parser("create", help="make a batch and its bootstrap secret")
    create.add_argument("batch_id", metavar="BATCH")
    create.add_argument("--secret-file", required=True, help="new file (mode 600) for the secret")
    create.add_argument("--note", default="", help="what the batch is (supplier, order)")
    _who(create)
    create.set_defaults(handler=run_batch_create)
    close = steps.add_parser("close", help="stop a batch's secret from enrolling anything more")
    close.add_argument("batch_id", metavar="BATCH")
    _who(close)
    close.set_defaults(handler=run_batch_close)
    listing = steps.add_parser("list", help="batches and their enrolments")
    _json(listing)
    listing.set_defaults(handler=run_batch_list)


def _allow(actions: Actions) -> None:
    allow = actions.add_parser("allow", help="the installers' allow-list (serial -> placement)")
    steps = allow.add_subparsers(dest="allow_command", metavar="STEP", required=True)
    load = steps.add_parser("load", help="add or replace entries from a CSV or TOML file")
    load.add_argument("file", metavar="FILE")
    _who(load)
    load.set_defaults(handler=run_allow_load)
    listing = steps.add_parser("list", help="the allow-list with each serial's state")
    _json(listing)
    listing.set_defaults(handler=run_allow_list)


def _by(args: argparse.Namespace) -> str:
    who = (getattr(args, "by", None) or getpass.getuser()).strip()
    if not who:
        from streetsense.errors import ConfigError  # noqa: PLC0415

        raise ConfigError("--by must name who decides")
    return who[:200]


def _settings(args: argparse.Namespace) -> Any:
    from streetsense.config import load_settings  # noqa: PLC0415

    return load_settings(getattr(args, "config", None))


def _open(args: argparse.Namespace) -> Fleet:
    from fleet.service import open_fleet  # noqa: PLC0415

    return open_fleet(_settings(args), "streetsense-fleet-cli")


def _close(fleet: Fleet) -> None:
    fleet.link.stop()
    fleet.conn.close()


def run_serve(args: argparse.Namespace) -> int:
    """Run the fleet service until SIGINT/SIGTERM."""
    from fleet.service import serve  # noqa: PLC0415
    from streetsense.lifecycle import StopSignal  # noqa: PLC0415

    serve(_settings(args), StopSignal().install())
    return 0


def run_broker_init(args: argparse.Namespace) -> int:
    """Prepare the broker's roles and service clients as its dynamic security admin."""
    from dataclasses import replace  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from fleet.broker_setup import ServiceClient, prepare  # noqa: PLC0415
    from fleet.dynsec import DynSec  # noqa: PLC0415
    from fleet.link import FleetLink  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415
    from streetsense.fleet_protocol import FleetTopics  # noqa: PLC0415
    from streetsense.topics import Topics  # noqa: PLC0415

    settings = _settings(args)
    clients = []
    for text in args.client:
        name, _, rest = text.partition(":")
        role, _, password_file = rest.partition(":")
        if not (name and role and password_file):
            raise ConfigError(f"--client {text!r} must be NAME:ROLE:PASSWORD_FILE")
        clients.append(ServiceClient(name, role, _first_line(Path(password_file))))
    target = replace(settings.broker(), username=args.admin_user,
                     password_file=args.admin_password_file)  # fmt: skip
    link = FleetLink(target, [], "streetsense-fleet-init").start()
    try:
        done = prepare(DynSec(link), Topics(settings.mqtt.topic_prefix),
                       FleetTopics(settings.fleet.topic_prefix), clients)  # fmt: skip
    finally:
        link.stop()
    sys.stdout.write("\n".join(done) + "\n")
    return 0


def _first_line(path: Any) -> str:
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {path}: {exc}") from exc
    if not text:
        raise ConfigError(f"the password file {path} is empty")
    return str(text.splitlines()[0])


def run_batch_create(args: argparse.Namespace) -> int:
    """Make a batch; its secret goes to --secret-file only."""
    from pathlib import Path  # noqa: PLC0415

    from fleet.batches import create_batch  # noqa: PLC0415

    fleet = _open(args)
    try:
        batch = create_batch(fleet, args.batch_id, _by(args), Path(args.secret_file), args.note)
    finally:
        _close(fleet)
    sys.stdout.write(
        f"batch {batch.batch_id}: bootstrap user {batch.username}, secret in {args.secret_file},"
        f" enrols until {batch.expires_at:%Y-%m-%d %H:%M} UTC\n"
    )
    return 0


def run_batch_close(args: argparse.Namespace) -> int:
    """Close a batch."""
    from fleet.batches import close_batch  # noqa: PLC0415

    fleet = _open(args)
    try:
        close_batch(fleet, args.batch_id, _by(args))
    finally:
        _close(fleet)
    sys.stdout.write(f"batch {args.batch_id} closed: its secret enrols nothing more\n")
    return 0


def _database(args: argparse.Namespace) -> Any:
    from store.db import connect, require_url  # noqa: PLC0415

    settings = _settings(args)
    return connect(require_url(settings.database), autocommit=True,
                   timeout_s=settings.database.connect_timeout_s)  # fmt: skip


def run_batch_list(args: argparse.Namespace) -> int:
    """List batches."""
    from store import fleet_enrolment  # noqa: PLC0415

    with _database(args) as conn:
        table = fleet_enrolment.batches(conn)
    _print(table, args.json, ("batch_id", "username", "expires_at", "closed_at", "enrolled",
                              "pending", "note"))  # fmt: skip
    return 0


def run_allow_load(args: argparse.Namespace) -> int:
    """Check an allow-list file against the registry, then save it; nothing is saved on error."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fleet.allowlist import load_allowlist  # noqa: PLC0415
    from store import fleet_enrolment  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    places = load_allowlist(args.file)
    by = _by(args)
    with _database(args) as conn:
        problems = fleet_enrolment.placement_problems(conn, places)
        if problems:
            shown = "\n  ".join(problems[:20])
            more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise ConfigError(f"{args.file}: nothing saved; fix:\n  {shown}{more}")
        now = datetime.now(UTC)
        with conn.transaction():
            count = fleet_enrolment.save_allowlist(conn, places, by, str(args.file), now)
            fleet_enrolment.audit(conn, now, by, "allow-list", str(args.file)[:200],
                                  {"entries": count})  # fmt: skip
    sys.stdout.write(f"{count} allow-list entries saved from {args.file}\n")
    return 0


def run_allow_list(args: argparse.Namespace) -> int:
    """Print the allow-list."""
    from store import fleet_enrolment  # noqa: PLC0415

    with _database(args) as conn:
        table = fleet_enrolment.allowlist(conn)
    _print(table, args.json, ("serial", "device_id", "site_id", "kind", "place", "spots",
                              "state", "added_by"))  # fmt: skip
    return 0


def run_pending(args: argparse.Namespace) -> int:
    """Print serials waiting for an operator, and serials claimed twice."""
    from store import fleet_enrolment  # noqa: PLC0415

    with _database(args) as conn:
        table = fleet_enrolment.enrolments(conn, ("pending", "approved"))
    _print(table, args.json, ("serial", "batch_id", "state", "hardware", "last_at", "requests",
                              "conflicts", "allow_listed"))  # fmt: skip
    return 0


def run_decision(args: argparse.Namespace) -> int:
    """Carry out an operator's decision now, audited; exit 1 when it cannot be done."""
    from datetime import UTC, datetime  # noqa: PLC0415

    from fleet.actions import run_queued  # noqa: PLC0415
    from store import fleet_devices  # noqa: PLC0415

    by = _by(args)
    fleet = _open(args)
    try:
        action_id = fleet_devices.queue_action(
            fleet.conn, args.action, args.subject, by, datetime.now(UTC), _decision_args(args)
        )
        run_queued(fleet, action_id)
        outcome = fleet_devices.action_outcome(fleet.conn, action_id)
    finally:
        _close(fleet)
    ok, text = outcome if outcome is not None else (False, "the action vanished")
    if ok is None:
        text = "queued: the fleet service carries it out"
    (sys.stdout if ok is not False else sys.stderr).write(text + "\n")
    return 0 if ok is not False else 1


def _decision_args(args: argparse.Namespace) -> dict[str, Any]:
    if args.action in ("refuse", "revoke"):
        return {"reason": args.reason}
    if args.action != "approve":
        return {}
    values = {key: getattr(args, key) for key in ("device", "site", "kind", "lot", "segment",
                                                  "lat", "lon") if getattr(args, key)}  # fmt: skip
    spots = []
    for text in args.spot:
        spot, _, rest = text.partition("=")
        sensor, _, category = rest.partition(":")
        if ":" in spot:
            spot, _, category = spot.partition(":")
        spots.append({"spot": spot, "sensor": sensor, "category": category or "general"})
    if spots:
        values["spots"] = spots
    return values


def run_devices(args: argparse.Namespace) -> int:
    """Print the enrolled devices."""
    from store import fleet_devices  # noqa: PLC0415

    with _database(args) as conn:
        table = fleet_devices.fleet_view(conn, 100_000, args.site)
    if args.state:
        index = table.columns.index("state")
        table = type(table)(table.columns, [r for r in table.rows if r[index] == args.state])
    _print(table, args.json, ("device_id", "site_id", "state", "version", "config_version",
                              "intended_config_version", "rollout_state", "generation",
                              "expires_at", "last_seen_at", "buffer_depth"))  # fmt: skip
    return 0


def run_audit(args: argparse.Namespace) -> int:
    """Print the audit log."""
    from store import fleet_devices  # noqa: PLC0415

    with _database(args) as conn:
        table = fleet_devices.audit_log(conn, args.limit, args.subject)
    _print(table, args.json, ("at", "actor", "action", "subject", "details"))
    return 0


def _print(table: Table, as_json: bool, shown: tuple[str, ...]) -> None:
    out = sys.stdout
    for row in table.rows:
        record = dict(zip(table.columns, row, strict=True))
        if as_json:
            out.write(json.dumps(record, default=str, sort_keys=True) + "\n")
        else:
            out.write("  ".join(_cell(record.get(name)) for name in shown) + "\n")
    if not as_json and not table.rows:
        out.write("(none)\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
