"""`streetsense ingest`: run the ingest service."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `ingest` command."""
    parser = subparsers.add_parser(
        "ingest", help="subscribe to device streams and store readings (MQTT -> PostgreSQL)"
    )
    parser.add_argument(
        "--client-id",
        help="MQTT client id; give each process sharing the subscription its own, stable across "
        "restarts (default: mqtt.client_id, else streetsense-ingest-<host>)",
    )
    parser.add_argument(
        "--auto-register", action="store_true", help="register unknown devices on first sight"
    )
    parser.add_argument(
        "--replay-quarantine",
        metavar="DEVICE",
        help="publish a now-registered device's quarantined messages again, then exit",
    )
    parser.add_argument(
        "--replay-rejected",
        action="store_true",
        help="publish again the messages refused on our side (store_refused, ingest_error, "
        "beyond_capacity) once their cause is fixed, then exit",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ingest.service import IngestService  # noqa: PLC0415  (keep the CLI light)
    from streetsense.config import load_settings, with_overrides  # noqa: PLC0415
    from streetsense.lifecycle import StopSignal  # noqa: PLC0415

    settings = load_settings(args.config)
    if args.auto_register:
        settings = with_overrides(settings, ingest={"auto_register": True})
    if args.replay_quarantine:
        from ingest.replay import replay_quarantine  # noqa: PLC0415

        count = replay_quarantine(settings, args.replay_quarantine)
        sys.stdout.write(f"replayed {count} quarantined message(s)\n")
        return 0
    if args.replay_rejected:
        from ingest.replay import replay_rejected  # noqa: PLC0415

        replayed, left = replay_rejected(settings)
        sys.stdout.write(f"replayed {replayed} refused message(s)")
        sys.stdout.write(f"; {left} kept only in part, not replayable\n" if left else "\n")
        return 0
    IngestService(settings, StopSignal().install(), client_id=args.client_id).run()
    return 0
