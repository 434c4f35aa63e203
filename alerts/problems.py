"""Mistakes in a rules file, each reported with its line, key and fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")


class Locator:
    """Find the line of a key in the TOML text, for error messages (tomllib keeps none)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line(self, header: str, index: int | None, key: str | None) -> int | None:
        """Return the 1-based line of `key` in the index-th `[[header]]` (or `[header]`) table."""
        pattern = re.compile(r"\s*\[\[?\s*" + re.escape(header) + r"\s*\]\]?\s*(#.*)?\Z")
        seen = -1
        start = None
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                seen += 1
                if index is None or seen == index:
                    start = number
                    break
        if start is None:
            return None
        if key is None:
            return start
        key_re = re.compile(r"\s*" + re.escape(key) + r"\s*[=.]")
        for number in range(start + 1, len(self.lines) + 1):
            text = self.lines[number - 1]
            if text.lstrip().startswith("["):
                break
            if key_re.match(text):
                return number
        return start


class Problems:
    """The mistakes found so far, with where they are."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.locate = Locator(text)
        self.messages: list[str] = []

    def add(self, header: str, index: int | None, key: str | None, message: str) -> None:
        """Record a mistake in the index-th `[[header]]` table (or `[header]`), at `key`."""
        line = self.locate.line(header, index, key)
        where = f"{self.source}:{line}" if line else self.source
        self.messages.append(f"{where}: {message}")


def line_of(message: str) -> int:
    match = re.match(r"[^:]*:(\d+):", message)
    return int(match[1]) if match else 0


def suggest(key: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; use one of: {', '.join(choices)}"


def strings(value: Any, complain: Callable[[str], None]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        complain(f"= {value!r} must be a list of names")
        return ()
    return tuple(value)
