"""The line protocol of `serial-line`, `command` and JSON-lines replay sources.

One event per line, either text or JSON (see docs/edge.md):

    <time> <name> <value> [<duration>]
    {"t": <time>, "n": "<name>", "v": <value>, "d": <duration>}

`<time>` is epoch seconds, or `-` for "now" (the agent stamps its clock when the line arrives).
`<name>` is `presence`, `vehicle` or a reading kind, optionally prefixed by a spot or lane id:
`A1/presence`. Values are numbers or true/false. Lines starting with `#` are comments.
"""

from __future__ import annotations

import json
import math
from typing import Any

from edge.drivers import SensorEvent
from streetsense.errors import PayloadError

_BOOLEANS = {"true": 1.0, "false": 0.0, "on": 1.0, "off": 0.0}


def parse_line(line: str, now: float) -> SensorEvent | None:
    """Parse one line into an event; None for blank lines and comments.

    Raises:
        PayloadError: the line breaks the protocol; the message says how.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("{"):
        return _from_json(text, now)
    parts = text.split()
    if len(parts) not in (3, 4):
        raise PayloadError(f"line {text[:60]!r} needs '<time> <name> <value> [<duration>]'")
    at = now if parts[0] == "-" else _number(parts[0], "time")
    duration = _number(parts[3], "duration") if len(parts) == 4 else 0.0
    return _event(at, parts[1], _number(parts[2], "value"), duration)


def _from_json(text: str, now: float) -> SensorEvent:
    try:
        item: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"line is not valid JSON: {exc}") from exc
    if not isinstance(item, dict) or "n" not in item or "v" not in item:
        raise PayloadError('a JSON line needs {"n": name, "v": value} and optionally "t", "d"')
    raw_time = item.get("t")
    at = now if raw_time in (None, "-") else _number(raw_time, "t")
    return _event(at, str(item["n"]), _number(item["v"], "v"), _number(item.get("d", 0), "d"))


def _event(at: float, name: str, value: float, duration: float) -> SensorEvent:
    sub_id, _, kind = name.rpartition("/")
    if not kind:
        raise PayloadError(f"name {name!r} is empty after the '/'")
    return SensorEvent(at=at, name=kind, value=value, sub_id=sub_id or None, duration=duration)


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, str) and raw.lower() in _BOOLEANS:
        return _BOOLEANS[raw.lower()]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PayloadError(f"{what} {str(raw)[:30]!r} is not a number") from None
    if not math.isfinite(value):
        raise PayloadError(f"{what} {raw!r} is not finite")
    return value
