"""`streetsense alerts`: check a rules file, run the service, list and acknowledge alerts."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.rules import RuleSet
    from streetsense.config import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `alerts check|run|list|ack|deliver` to the `streetsense` command."""
    alerts = subparsers.add_parser("alerts", help="alert rules, their evaluation and delivery")
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate a rules file and list what it defines")
    check.add_argument("file", metavar="FILE", help="the TOML rules file")
    check.set_defaults(handler=run_check)
    run = actions.add_parser("run", help="evaluate the rules and deliver notifications")
    _rules_option(run)
    run.add_argument("--once", action="store_true", help="one evaluation and delivery, then exit")
    run.set_defaults(handler=run_service)
    deliver = actions.add_parser("deliver", help="deliver what the outbox has due, once")
    _rules_option(deliver)
    deliver.set_defaults(handler=run_deliver)
    listing = actions.add_parser("list", help="show active alerts (firing and acknowledged)")
    listing.add_argument("--history", action="store_true", help="include resolved ones")
    listing.add_argument("--limit", type=int, default=200, help="at most this many (200)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=run_list)
    ack = actions.add_parser("ack", help="acknowledge a firing alert")
    ack.add_argument("alert_id", type=int, metavar="ID")
    ack.add_argument("--by", required=True, help="who acknowledges (name or e-mail)")
    ack.add_argument("--note", default="", help="what is being done about it")
    ack.set_defaults(handler=run_ack)


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules", metavar="FILE", default=None,
        help="TOML rules file (default: alerts.rules_file of the settings, else the defaults)",
    )  # fmt: skip


def run_check(args: argparse.Namespace) -> int:
    """Validate a rules file; print what it defines (errors are raised as ConfigError)."""
    from alerts.rules import load_rules  # noqa: PLC0415

    rules = load_rules(args.file)
    out = sys.stdout
    out.write(
        f"{args.file}: OK, {len(rules.rules)} rules (with the defaults it does not replace)\n"
    )
    for rule in rules.rules:
        sent = ", ".join(rule.notify) or "dashboard only"
        out.write(f"  {rule.name:<24} {rule.kind:<18} {rule.severity:<8} -> {sent}\n")
    for channel in rules.channels.values():
        out.write(f"  channel {channel.name}: {channel.type}\n")
    for window in rules.maintenance:
        out.write(f"  maintenance {window.name}: {window.start:%Y-%m-%d %H:%M} to "
                  f"{window.end:%Y-%m-%d %H:%M} UTC\n")  # fmt: skip
    return 0


def _load(args: argparse.Namespace) -> tuple[Settings, str, RuleSet]:
    from alerts.rules import load_rules  # noqa: PLC0415
    from store.db import require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(getattr(args, "config", None))
    url = require_url(settings.database)
    path = getattr(args, "rules", None) or settings.alerts.rules_file or None
    return settings, url, load_rules(path)


def run_service(args: argparse.Namespace) -> int:
    """Evaluate and deliver once, or every interval until SIGINT/SIGTERM."""
    import psycopg  # noqa: PLC0415

    from alerts.service import one_round, run_forever  # noqa: PLC0415
    from store.db import connect  # noqa: PLC0415
    from streetsense.lifecycle import StopSignal  # noqa: PLC0415

    settings, url, rules = _load(args)

    def open_connection() -> psycopg.Connection:
        return connect(url, autocommit=True, timeout_s=settings.database.connect_timeout_s,
                       application_name="streetsense-alerts")  # fmt: skip

    if args.once:
        with open_connection() as conn:
            one_round(conn, rules, settings)
        return 0
    run_forever(open_connection, rules, settings, StopSignal().install())
    return 0


def run_deliver(args: argparse.Namespace) -> int:
    """Deliver what is due once; exit 1 when something failed (it stays queued)."""
    from alerts.delivery import Backoff, deliver  # noqa: PLC0415
    from alerts.service import now_utc  # noqa: PLC0415
    from store.db import connect  # noqa: PLC0415

    settings, url, rules = _load(args)
    with connect(url, autocommit=True) as conn:
        result = deliver(
            conn, rules, settings, now_utc, Backoff(most_s=settings.alerts.retry_max_s)
        )
    sys.stdout.write(f"sent {result.sent}, failed {result.failed}, waiting {result.waiting}\n")
    return 1 if result.failed else 0


def run_list(args: argparse.Namespace) -> int:
    """Print active alerts (and history with --history), newest first."""
    from store import alerts_reads  # noqa: PLC0415
    from store.db import connect, require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(getattr(args, "config", None))
    with connect(require_url(settings.database), autocommit=True) as conn:
        table = (alerts_reads.history if args.history else alerts_reads.active)(conn, args.limit)
    out = sys.stdout
    for row in table.rows:
        record = dict(zip(table.columns, row, strict=True))
        if args.json:
            out.write(json.dumps(record, default=str) + "\n")
        else:
            out.write(f"{record['alert_id']:>7} {record['state']:<12} {record['severity']:<8} "
                      f"{record['rule']:<22} {record['summary']}\n")  # fmt: skip
    return 0


def run_ack(args: argparse.Namespace) -> int:
    """Acknowledge one firing alert; exit 1 when it is not firing."""
    from store import alerts as store  # noqa: PLC0415
    from store.db import connect, require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(getattr(args, "config", None))
    by = args.by.strip()
    if not by:
        log.error("--by must name who acknowledges")
        return 2
    with connect(require_url(settings.database), autocommit=True) as conn:
        done = store.acknowledge(conn, args.alert_id, by[:200], args.note[:2000], datetime.now(UTC))
    if not done:
        log.error(
            "alert %d is not firing (unknown, already acknowledged or resolved)", args.alert_id
        )
        return 1
    sys.stdout.write(f"alert {args.alert_id} acknowledged by {by}\n")
    return 0
