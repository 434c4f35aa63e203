"""Identifier rules shared by topics, SenML names and the registry."""

from __future__ import annotations

import re
from typing import Final

# No MQTT wildcards, no separators, no dots: an id can never change a topic's meaning.
_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
ID_RULE: Final = "1-64 characters from A-Z a-z 0-9 _ -, starting with a letter or digit"


def is_valid_id(text: str) -> bool:
    """Tell whether `text` is a valid site, device, lot, spot, segment or lane id."""
    return _ID_RE.match(text) is not None


def describe_bad_id(what: str, text: str) -> str:
    """Return a message that names the bad id and the rule it breaks."""
    shown = text if len(text) <= 70 else text[:67] + "..."
    return f"{what} {shown!r} is not a valid id ({ID_RULE})"
