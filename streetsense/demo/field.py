"""A device the demo leaves to a field engineer: in the registry, with a ready-made agent config.

`streetsense-edge run --config <data dir>/edge-agent.toml` starts a real agent (the simulated
driver of a streetlight controller) against the demo's broker; ingest knows the device, so it
confirms what the agent sends, and the Sensors and devices page shows it beside the others.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Final

DEVICE: Final = "field-agent-1"
CONFIG_FILE: Final = "edge-agent.toml"
_MARK: Final = "# left for a field engineer's own agent (streetsense demo)"


def add_to_registry(registry: Path) -> str:
    """Append the field device to a generated registry file (once); return its site."""
    text = registry.read_text(encoding="utf-8")
    site = str(tomllib.loads(text)["site"][0]["id"])
    if _MARK not in text:
        entry = f'\n{_MARK}\n[[device]]\nid = "{DEVICE}"\nsite = "{site}"\nkind = "light"\n'
        registry.write_text(text + entry, encoding="utf-8")
    return site


def write_agent_config(
    path: Path, site: str, mqtt: Mapping[str, str], keys: Path, state_dir: Path
) -> Path:
    """Write the agent configuration of the field device for `streetsense-edge run --config`.

    Args:
        path: the file to write.
        site: the demo city's site id.
        mqtt: the agent's `[mqtt]` settings (url, protocol, topic_prefix).
        keys: the folder of the devices' confirmation keys (`streetsense registry key`).
        state_dir: where the agent keeps its buffer and state file.
    """
    key = keys / f"{DEVICE}.key"
    sections: dict[str, dict[str, object]] = {
        "device": {
            "site": site,
            "id": DEVICE,
            "confirm_key_file": str(key) if key.is_file() else "",
        },
        "mqtt": dict(mqtt),
        "buffer": {"path": str(state_dir / f"{DEVICE}.sqlite"), "synchronous": "normal"},
        # a streetlight controller: lamp power and dimming, no spots or lanes to count
        "driver": {"kind": "simulated", "spots": 0, "lanes": 0, "lamp": True},
        "status": {"heartbeat_s": 30.0},
    }
    lines = [
        "# A real edge agent for the running demo: streetsense-edge run --config " + str(path),
        "# Written by `streetsense demo` on every start; see docs/edge.md for every setting.",
    ]
    for name, table in sections.items():
        lines.append(f"\n[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
