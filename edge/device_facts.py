"""What a device says about itself when it enrols: its serial number and hardware facts."""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Final

from edge.config import FleetSection
from streetsense.errors import ConfigError
from streetsense.fleet_protocol import MAX_FACT_CHARS, is_valid_serial

# Where boards keep a serial: Raspberry Pi and other device-tree boards, x86 DMI, systemd.
SERIAL_FILES: Final = (
    "/proc/device-tree/serial-number",
    "/sys/class/dmi/id/product_serial",
    "/etc/machine-id",
)
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f]")


def read_serial(fleet: FleetSection) -> str:
    """Return this device's serial: `fleet.serial`, else the first readable serial file.

    Raises:
        ConfigError: none found, or it is not a valid serial; says which setting fixes it.
    """
    if fleet.serial:
        found, where = fleet.serial, "setting 'fleet.serial'"
    else:
        candidates = (fleet.serial_file,) if fleet.serial_file else SERIAL_FILES
        found, where = "", ""
        for name in candidates:
            text = _read(name)
            if text:
                found, where = text, name
                break
        if not found:
            raise ConfigError(
                f"no serial number found in {', '.join(candidates)}; set 'fleet.serial' "
                "(STREETSENSE_EDGE_FLEET_SERIAL) to the number printed on the device"
            )
    if not is_valid_serial(found):
        raise ConfigError(
            f"the serial {found[:70]!r} from {where} is not valid (1-64 of A-Z a-z 0-9 . _ : -);"
            " set 'fleet.serial' to the number printed on the device"
        )
    return found


def hardware_facts() -> dict[str, str]:
    """Return what an operator sees of the device before approving it (model, machine, OS)."""
    facts = {
        "model": _read("/proc/device-tree/model") or _read("/sys/class/dmi/id/product_name"),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mac": _first_mac(),
    }
    return {key: value[:MAX_FACT_CHARS] for key, value in facts.items() if value}


def _read(name: str) -> str:
    try:
        raw = Path(name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return _UNPRINTABLE.sub("", raw).strip()


def _first_mac() -> str:
    try:
        interfaces = sorted(Path("/sys/class/net").iterdir())
    except OSError:
        return ""
    for interface in interfaces:
        if interface.name == "lo":
            continue
        address = _read(str(interface / "address"))
        if address and address != "00:00:00:00:00:00":
            return address
    return ""
