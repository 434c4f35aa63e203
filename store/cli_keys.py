"""`streetsense registry key`: the devices' confirmation keys, for their installers."""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def register_key(registry_actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `registry key DEVICE... [--all] [--out DIR]`."""
    key = registry_actions.add_parser(
        "key",
        help="print a device's confirmation key, for its device.confirm_key_file "
        "(needs ingest's database role)",
    )
    key.add_argument("devices", nargs="*", metavar="DEVICE", help="device id(s)")
    key.add_argument("--all", action="store_true", help="every active registered device")
    key.add_argument(
        "--out", metavar="DIR", help="write DIR/<device>.key (mode 600) for each device"
    )
    key.set_defaults(handler=_key)


def _key(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from store.confirm_secret import read_confirm_secret  # noqa: PLC0415
    from store.db import connect, require_url  # noqa: PLC0415
    from store.quarantine import active_devices, known_among  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415
    from streetsense.confirm import device_key, key_text  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415
    from streetsense.ids import describe_bad_id, is_valid_id  # noqa: PLC0415

    for device in args.devices:
        if not is_valid_id(device):
            raise ConfigError(describe_bad_id("device id", device))
    if not args.devices and not args.all:
        raise ConfigError("name the device(s), or --all for every registered device")
    settings = load_settings(args.config).database
    with connect(require_url(settings), timeout_s=settings.connect_timeout_s) as conn:
        secret = read_confirm_secret(conn)
        known = known_among(conn, args.devices)
        devices = sorted(active_devices(conn)) if args.all else args.devices
    for device in sorted(set(args.devices) - known.keys()):
        log.warning("device %s is not in the registry (yet): check its id", device)
    if args.out is None:
        if len(devices) != 1:
            raise ConfigError("several devices: use --out DIR to write one key file each")
        sys.stdout.write(key_text(device_key(secret, devices[0])) + "\n")
        return 0
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for device in devices:
        path = folder / f"{device}.key"
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(key_text(device_key(secret, device)) + "\n")
    log.info("wrote %d key file(s) to %s", len(devices), folder)
    return 0
