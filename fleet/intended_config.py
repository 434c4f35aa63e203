"""The config operators intend for each device: the version of its retained remote config
(`<prefix>/<site>/<device>/config`), read as the broker keeps it, compared on the fleet view
with the version the device reports in force."""

from __future__ import annotations

import json
import logging
from typing import Final

from fleet.context import Fleet
from store import fleet_devices
from streetsense.errors import TopicError
from streetsense.topics import Channel, DeviceTopic

log = logging.getLogger(__name__)
MAX_CONFIG_BYTES: Final = 64_000


def config_filter(fleet: Fleet) -> str:
    """Return the subscription to every device's remote config."""
    return f"{fleet.topics.prefix}/+/+/{Channel.CONFIG.value}"


def is_config(fleet: Fleet, topic: str) -> bool:
    """Tell whether `topic` is a device's remote config topic."""
    return topic.startswith(fleet.topics.prefix + "/") and topic.endswith(
        "/" + Channel.CONFIG.value
    )


def take(fleet: Fleet, topic: str, payload: bytes) -> str | None:
    """Record the intended config version of an enrolled device; return it (None: ignored)."""
    try:
        parsed = fleet.topics.parse(topic)
    except TopicError as exc:
        log.warning("config on a bad topic: %s", exc)
        return None
    if not isinstance(parsed, DeviceTopic) or parsed.channel is not Channel.CONFIG:
        return None
    version = ""
    if payload:
        if len(payload) > MAX_CONFIG_BYTES:
            return None
        try:
            document = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            document = None
        raw = document.get("version") if isinstance(document, dict) else None
        version = "" if raw is None else str(raw)[:64]
    if not fleet_devices.set_intended_config(fleet.conn, parsed.device_id, version, fleet.clock()):
        return None
    return version
