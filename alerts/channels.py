"""Where notifications go: `[channel.NAME]` tables of a rules file, checked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from alerts.problems import NAME_RE, Problems, suggest

CHANNEL_TYPES: Final = MappingProxyType(
    {
        "webhook": {"url", "secret_env", "timeout_s"},
        "email": {"host", "port", "sender", "to", "starttls", "username", "password_env"},
        "mqtt": {"topic", "qos"},
    }
)


@dataclass(frozen=True, slots=True)
class Channel:
    """Where notifications go: a webhook, an e-mail address list or an MQTT topic."""

    name: str
    type: str
    options: MappingProxyType[str, Any]


def read_channels(items: Any, problems: Problems) -> dict[str, Channel]:
    """Return the channels of a rules file's `channel` table; mistakes go to `problems`."""
    if not isinstance(items, Mapping):
        problems.add("channel", None, None, "channels are written [channel.NAME] tables")
        return {}
    channels = {}
    for name, options in items.items():
        header = f"channel.{name}"

        def bad(key: str | None, message: str, header: str = header) -> None:
            problems.add(header, None, key, message)

        if not NAME_RE.match(name) or not isinstance(options, Mapping):
            bad(None, f"channel '{name}': name it with lower-case letters, digits, '-', '_'")
            continue
        kind = str(options.get("type"))
        if kind not in CHANNEL_TYPES:
            bad(
                "type", f"channel '{name}': type {kind!r} must be one of {', '.join(CHANNEL_TYPES)}"
            )
            continue
        allowed = CHANNEL_TYPES[kind] | {"type"}
        for key in options:
            if key not in allowed:
                bad(
                    key,
                    f"channel '{name}': unknown key '{key}' for a {kind}"
                    + suggest(key, sorted(allowed)),
                )
        for message, key in _channel_mistakes(kind, options):
            bad(key, f"channel '{name}': {message}")
        channels[name] = Channel(name, kind, MappingProxyType(dict(options)))
    return channels


def _channel_mistakes(kind: str, options: Mapping[str, Any]) -> list[tuple[str, str]]:
    mistakes = []
    if kind == "webhook":
        url = options.get("url")
        if not isinstance(url, str) or not re.match(r"https?://[^\s/]+", url):
            mistakes.append(("url must be an http:// or https:// address", "url"))
        secret = options.get("secret_env")
        if not isinstance(secret, str) or not re.match(r"[A-Z_][A-Z0-9_]*\Z", secret):
            mistakes.append(
                ("secret_env must name the environment variable holding the HMAC secret "
                 "(the secret itself never goes in this file)", "secret_env")
            )  # fmt: skip
    elif kind == "email":
        if not isinstance(options.get("host"), str):
            mistakes.append(("host must name the SMTP server", "host"))
        port = options.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65_536:
            mistakes.append(("port must be a TCP port (1-65535)", "port"))
        if not isinstance(options.get("sender"), str) or "@" not in options.get("sender", ""):
            mistakes.append(("sender must be an e-mail address", "sender"))
        to = options.get("to")
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(a, str) and "@" in a for a in to)
        ):
            mistakes.append(("to must be a list of e-mail addresses", "to"))
    elif kind == "mqtt":
        topic = options.get("topic")
        if not isinstance(topic, str) or not topic or any(c in topic for c in "#+\0"):
            mistakes.append(("topic must be a topic name without wildcards", "topic"))
        if options.get("qos", 1) not in (0, 1, 2):
            mistakes.append(("qos must be 0, 1 or 2", "qos"))
    return mistakes
