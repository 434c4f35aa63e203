"""The state file the running agent writes and `streetsense-edge status` reads."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from streetsense.errors import ConfigError


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file atomically (a reader never sees half a file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def read_state(path: Path) -> dict[str, Any]:
    """Read the state file.

    Raises:
        ConfigError: there is no state file (the agent never ran with this config) or it is
            unreadable.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"no state file at {path}: the agent has not run with this config; start it "
            "(systemctl start streetsense-edge) or pass the right --config"
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the state file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"the state file {path} is not a JSON object")
    return data


def describe(state: dict[str, Any], now: float | None = None) -> list[str]:
    """Return the state as plain lines for a field engineer."""
    now = time.time() if now is None else now
    age = now - float(state.get("updated_at", 0))
    running = bool(state.get("running", True)) and age < 10
    if "enrolment" in state and not state.get("device"):
        return [
            f"agent:            {'running' if running else 'NOT RUNNING'} (pid "
            f"{state.get('pid')}), not enrolled yet",
            f"enrolment:        {state['enrolment']}",
            "fix: an operator approves it (streetsense fleet pending / approve, or the dashboard)",
        ]
    lines = [
        f"agent:            {'running' if running else 'NOT RUNNING'} "
        f"(pid {state.get('pid')}, state written {age:.0f} s ago)",
        f"device:           {state.get('site')}/{state.get('device')}",
        f"link:             {state.get('link')}"
        + (f" to {state['broker']}" if state.get("broker") else "")
        + (f" ({state['link_error']})" if state.get("link_error") else ""),
        f"buffer depth:     {state.get('buffer_depth')} readings ({state.get('buffer_bytes')} bytes"
        f" of {state.get('buffer_cap_bytes')})",
        f"oldest unsent:    {_age(state.get('oldest_unsent_ms'), now)}",
        f"oldest held:      {_age(state.get('oldest_ms'), now)}",
        f"dropped at cap:   {state.get('buffer_dropped')}",
        f"last publish:     {_age_s(state.get('last_publish'), now)}",
        f"last confirmed:   seq {state.get('acked')} (next seq {state.get('next_seq')})",
        f"refused acks:     {state.get('acks_refused', 0)} (confirmations not signed for this "
        f"device; key {'installed' if state.get('confirm_key', True) else 'MISSING'})",
        f"clock:            {'suspect' if state.get('clock_suspect') else 'ok'}",
    ]
    fleet = state.get("fleet")
    if isinstance(fleet, dict):
        lines += _fleet_lines(fleet, now)
    if not running:
        lines.append("fix: start the agent (systemctl start streetsense-edge) and read its log")
    elif state.get("link") != "up":
        lines.append("fix: run `streetsense-edge check --config ...` to test the broker link")
    elif state.get("confirm_key") is False:
        lines.append(
            "fix: install the confirmation key (`streetsense registry key <device id>` on the "
            "ingest side, into device.confirm_key_file): until then nothing leaves the buffer"
        )
    return lines


def _fleet_lines(fleet: dict[str, Any], now: float) -> list[str]:
    expires = fleet.get("expires_at_ms") or 0
    left = (float(expires) / 1000 - now) / 86_400 if expires else None
    life = "unknown" if left is None else f"expires in {left:.1f} days"
    rotating = ", rotating now" if fleet.get("rotating") else ""
    lines = [
        f"release:          {fleet.get('release')} (serial {fleet.get('serial')})",
        f"password:         generation {fleet.get('generation')}, {life}{rotating}",
    ]
    if fleet.get("update"):
        lines.append(f"update:           {fleet['update']}")
    if fleet.get("refusals"):
        lines.append(
            f"broker refusals:  {fleet['refusals']} since the last connection (revoked or "
            "expired? ask the operator: streetsense fleet devices)"
        )
    return lines


def _age(millis: Any, now: float) -> str:
    return "none" if millis is None else _age_s(float(millis) / 1000, now)


def _age_s(moment: Any, now: float) -> str:
    if moment is None:
        return "never"
    return f"{now - float(moment):.0f} s ago"
