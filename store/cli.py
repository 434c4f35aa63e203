"""`streetsense db migrate|status` and `streetsense registry load FILE`."""

from __future__ import annotations

import argparse
import logging
import sys

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
    registry = subparsers.add_parser("registry", help="the city registry")
    registry_actions = registry.add_subparsers(dest="registry_action", required=True)
    load = registry_actions.add_parser("load", help="load a registry TOML file (idempotent)")
    load.add_argument("file", help="registry file (see README, 'City registry')")
    load.set_defaults(handler=_load)


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
    sys.stdout.write(f"{describe_url(url)}: {caps.backend}, schema version {version}\n")
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
