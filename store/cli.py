"""`streetsense db migrate|status|refresh`, `registry load FILE` and `export`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports only the stdlib at module level
    from datetime import datetime

    import psycopg

    from store.export import ExportRequest

from store.cli_keys import register_key

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `db` and `registry` commands."""
    db = subparsers.add_parser("db", help="database schema")
    db_actions = db.add_subparsers(dest="db_action", required=True)
    db_actions.add_parser("migrate", help="apply pending migrations (idempotent)").set_defaults(
        handler=_migrate
    )
    db_actions.add_parser("status", help="print backend and schema version").set_defaults(
        handler=_status
    )
    refresh = db_actions.add_parser(
        "refresh", help="bring the occupancy and flow rollups up to date (idempotent)"
    )
    refresh.add_argument(
        "--since", metavar="T", help="also recompute everything from T (after a bulk backfill)"
    )
    refresh.set_defaults(handler=_refresh)
    _register_export(subparsers)
    registry = subparsers.add_parser("registry", help="the city registry")
    registry_actions = registry.add_subparsers(dest="registry_action", required=True)
    load = registry_actions.add_parser("load", help="load a registry TOML file (idempotent)")
    load.add_argument("file", help="registry file (see README, 'City registry')")
    load.set_defaults(handler=_load)
    _register_overrides(registry_actions)
    register_key(registry_actions)


def _migrate(args: argparse.Namespace) -> int:
    from store.db import connect, require_url  # noqa: PLC0415  (keep the CLI light)
    from store.migrate import available_migrations, migrate, schema_version  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        applied = migrate(conn, settings)
        version = schema_version(conn)
    latest = max((m.version for m in available_migrations()), default=0)
    sys.stdout.write(
        f"schema at version {version} (latest {latest}); applied {len(applied)} migration(s)\n"
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    from store.db import connect, describe_url, detect_capabilities, require_url  # noqa: PLC0415
    from store.migrate import schema_version  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config).database
    url = require_url(settings)
    with connect(url, autocommit=True, timeout_s=settings.connect_timeout_s) as conn:
        caps = detect_capabilities(conn, settings)
        version = schema_version(conn)
    sys.stdout.write(
        f"{describe_url(url)}: {caps.backend} ({caps.reason}), schema version {version}\n"
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    from store.db import connect, require_url  # noqa: PLC0415
    from store.registry import store_registry  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415
    from streetsense.registry import load_registry  # noqa: PLC0415

    registry = load_registry(args.file)
    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        result = store_registry(conn, registry, str(args.file))
    state = "loaded" if result.changed else "unchanged (already loaded)"
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items())
    sys.stdout.write(f"registry {result.version} {state}: {counts}\n")
    return 0


def _register_overrides(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `registry close|open|clear|status|audit`: operators' overrides of a lot's status."""
    for name, summary in (
        ("close", "close a lot whatever its opening hours say (published as closed, never full)"),
        ("open", "open a lot whatever its opening hours say"),
        ("clear", "drop a lot's override: its opening hours decide again"),
    ):
        action = actions.add_parser(name, help=summary, description=summary)
        action.add_argument("lot", help="lot id")
        action.add_argument(
            "--reason", required=name != "clear", default="override cleared",
            help="why (kept in the audit log; published with the status, so no personal data)",
        )  # fmt: skip
        action.add_argument("--by", help="who decides (default: your login name); audited")
        if name != "clear":
            action.add_argument("--until", metavar="T", help="end of the override (ISO 8601)")
        action.set_defaults(handler=_override, override_action=name)
    status = actions.add_parser("status", help="every lot's opening status and what decides it")
    status.set_defaults(handler=_show_status)
    audit = actions.add_parser("audit", help="the override audit log, newest first")
    audit.add_argument("lot", nargs="?", help="only this lot")
    audit.add_argument("--limit", type=int, default=50)
    audit.set_defaults(handler=_show_audit)


def _override(args: argparse.Namespace) -> int:
    import getpass  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from store.db import connect, require_url  # noqa: PLC0415
    from store.export import parse_time  # noqa: PLC0415
    from store.lot_status import clear_override, set_override  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415
    from streetsense.hours import OpeningStatus  # noqa: PLC0415
    from streetsense.lot_status import StatusOverride  # noqa: PLC0415

    now = datetime.now(UTC)
    actor = args.by or getpass.getuser()
    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        if args.override_action == "clear":
            had = clear_override(conn, args.lot, actor, args.reason, "cli", now)
            state = "cleared" if had else "had no override (nothing to clear; audited)"
            sys.stdout.write(f"lot {args.lot}: override {state}; its opening hours decide\n")
            return 0
        until = parse_time(args.until, "--until") if args.until else None
        status = OpeningStatus.CLOSED if args.override_action == "close" else OpeningStatus.OPEN
        set_override(conn, StatusOverride(args.lot, status, args.reason, actor, now, until), "cli")
    ends = f" until {until.isoformat()}" if until else " until cleared"
    sys.stdout.write(f"lot {args.lot}: {status.value}{ends} (by {actor}: {args.reason})\n")
    return 0


def _show_status(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from store.db import connect, require_url  # noqa: PLC0415
    from store.lot_status import lot_hours, read_overrides  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415
    from streetsense.lot_status import lot_status  # noqa: PLC0415

    settings = load_settings(args.config)
    now = datetime.now(UTC)
    url = require_url(settings.database)
    with connect(url, timeout_s=settings.database.connect_timeout_s) as conn:
        lots, overrides = lot_hours(conn), read_overrides(conn)
    for lot_id, name, hours in lots:
        override = overrides.get(lot_id)
        found = lot_status(hours, override, now, settings.city.timezone, settings.city.country)
        who = f" by {override.set_by}" if override and override.active(now) else ""
        sys.stdout.write(
            f"{lot_id}\t{found.status.value}\t{found.source.value}{who}\t{found.reason}\t{name}\n"
        )
    return 0


def _show_audit(args: argparse.Namespace) -> int:
    from store.db import connect, require_url  # noqa: PLC0415
    from store.lot_status import audit_log  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        table = audit_log(conn, args.lot, max(1, min(args.limit, 10_000)))
    sys.stdout.write("\t".join(table.columns) + "\n")
    for row in table.rows:
        sys.stdout.write("\t".join("" if v is None else str(v) for v in row) + "\n")
    return 0


def _register_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = subparsers.add_parser(
        "export",
        help="export readings, rollups or rejected messages (CSV or Parquet, streamed)",
        description="Times are ISO 8601 (2026-11-01 or 2026-11-01T07:30:00Z); without a zone"
        " they are UTC. Rows in [--from, --to) ordered by time.",
    )
    export.add_argument("dataset", choices=("readings", "occupancy", "flow", "rejected"))
    export.add_argument("--from", dest="start", required=True, metavar="T", help="first time")
    export.add_argument("--to", dest="end", required=True, metavar="T", help="end (excluded)")
    where = export.add_mutually_exclusive_group()
    where.add_argument("--lot", metavar="ID", help="only this lot (its devices for readings)")
    where.add_argument("--segment", metavar="ID", help="only this road segment")
    export.add_argument(
        "--resolution", choices=("5m", "1h", "1d"), help="occupancy and flow bucket (default 5m)"
    )
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--output", metavar="FILE", help="write here (default: stdout, CSV only)")
    export.set_defaults(handler=_export)


def _refresh(args: argparse.Namespace) -> int:
    from store.db import connect, require_url  # noqa: PLC0415
    from store.export import parse_time  # noqa: PLC0415
    from store.rollups import refresh  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(args.config)
    since = parse_time(args.since, "--since") if args.since else None
    url = require_url(settings.database)
    with connect(url, timeout_s=settings.database.connect_timeout_s) as conn:
        result = refresh(conn, settings, since=since)
    sys.stdout.write(
        f"rollups up to date: {result.readings} readings folded in, {result.lots} lots and "
        f"{result.segments} segments recomputed in {result.seconds:.2f} s\n"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from store.db import connect, require_url  # noqa: PLC0415
    from store.export import ExportRequest, parse_time  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    if args.resolution and args.dataset not in ("occupancy", "flow"):
        raise ConfigError("--resolution applies to occupancy and flow exports only; drop it")
    if args.format == "parquet" and not args.output:
        raise ConfigError("Parquet is binary: give --output FILE (or use --format csv)")
    request = ExportRequest(
        args.dataset,
        parse_time(args.start, "--from"),
        parse_time(args.end, "--to"),
        lot=args.lot,
        segment=args.segment,
        resolution=args.resolution or "5m",
    )
    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        rows = _run_export(conn, request, args.format, args.output)
    log.info("wrote %d rows to %s", rows, args.output or "stdout")
    return 0


def _run_export(
    conn: psycopg.Connection, request: ExportRequest, file_format: str, output: str | None
) -> int:
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    from store.export import CsvSink, ParquetSink, RowSink, export  # noqa: PLC0415

    hours = (request.end - request.start).total_seconds() / 3600
    # disable=None: a bar only when stderr is a terminal, so pipes and logs stay clean
    with tqdm(total=hours, unit="h", desc=f"export {request.dataset}", file=sys.stderr,
              disable=None, bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} h of data{postfix}",
              ) as bar:  # fmt: skip
        counted = [0]

        def progress(last: datetime, rows: int) -> None:
            counted[0] += rows
            bar.update((last - request.start).total_seconds() / 3600 - bar.n)
            bar.set_postfix(rows=counted[0])

        if output is None:
            return export(conn, request, CsvSink(sys.stdout, request.columns), progress)
        # A failed export leaves no half-written file behind.
        partial = Path(f"{output}.partial")
        try:
            sink: RowSink
            if file_format == "parquet":
                sink = ParquetSink(str(partial), request.columns)
                rows = export(conn, request, sink, progress)
            else:
                with partial.open("w", encoding="utf-8", newline="") as stream:
                    rows = export(conn, request, CsvSink(stream, request.columns), progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, output)
        return rows
