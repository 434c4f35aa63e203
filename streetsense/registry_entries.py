"""Typed access to the entries of a registry file, with errors that name the file line."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from streetsense.errors import RegistryError
from streetsense.ids import describe_bad_id, is_valid_id


class SourceLines:
    """Where each `[[table]]` entry and its keys sit in the file, so errors name the line.

    TOML parsers drop positions; headers and `key =` lines are found again in the text. An
    entry written some other way (inline arrays of tables) is named without a line.
    """

    _HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z_]+)\s*\]\]")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()
        self.headers: dict[str, list[int]] = {}
        for number, line in enumerate(self.lines):
            match = self._HEADER.match(line)
            if match:
                self.headers.setdefault(match[1], []).append(number)

    def line_of(self, table: str, index: int, key: str | None) -> int | None:
        """Return the 1-based line of an entry's key (or of its header), if found."""
        starts = self.headers.get(table, [])
        if index >= len(starts):
            return None
        start = starts[index]
        if key is None:
            return start + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start + 1, len(self.lines)):
            line = self.lines[number]
            if self._HEADER.match(line) or (line.lstrip().startswith("[") and "=" not in line):
                break
            if pattern.match(line):
                return number + 1
        return start + 1


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Entry:
    """Typed access to one table entry, with errors that name it (and its line in the file)."""

    def __init__(
        self, table: str, index: int, item: Mapping[str, Any], source: SourceLines | None = None
    ) -> None:
        self.table, self.index, self.item, self.source = table, index, item, source
        self.used: set[str] = set()
        self.id = self.ident("id")

    def at(self, key: str | None) -> str:
        """Return "FILE line N: " for this entry (and key), or '' without a source."""
        if self.source is None:
            return ""
        line = self.source.line_of(self.table, self.index, key)
        return f"{self.source.name} line {line}: " if line else ""

    def where(self, key: str) -> str:
        label = getattr(self, "id", None) or f"#{self.index + 1}"
        return f"{self.at(key)}{self.table} '{label}', field '{key}'"

    def raw(self, key: str, default: Any = ...) -> Any:
        self.used.add(key)
        if key in self.item:
            return self.item[key]
        if default is ...:
            raise RegistryError(f"{self.where(key)} is required")
        return default

    def ident(self, key: str, *, optional: bool = False) -> Any:
        value = self.raw(key, None if optional else ...)
        if value is None:
            return None
        if not isinstance(value, str) or not is_valid_id(value):
            raise RegistryError(f"{self.where(key)}: {describe_bad_id('id', str(value))}")
        return value

    def text(self, key: str, default: str | None = None, longest: int = 200) -> str:
        value = self.raw(key, ... if default is None else default)
        if not isinstance(value, str) or len(value) > longest:
            raise RegistryError(f"{self.where(key)} must be text of at most {longest} characters")
        if _CONTROL.search(value):
            # Feeds publish names in XML, CSV and JSON; control characters break XML 1.0.
            raise RegistryError(f"{self.where(key)} must not contain control characters")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], example: str) -> str:
        value = self.text(key, "", longest=500)
        if value and not pattern.match(value):
            raise RegistryError(f"{self.where(key)} = {value!r} is not valid; write e.g. {example}")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.raw(key, None)
        if value is not None and not isinstance(value, bool):
            raise RegistryError(f"{self.where(key)} must be true or false")
        return value

    def points(self, key: str, low: int, high: int) -> tuple[tuple[float, float], ...]:
        raw = self.raw(key, ... if low > 0 else [])
        if not isinstance(raw, list) or not low <= len(raw) <= high:
            raise RegistryError(f"{self.where(key)} must list {low} to {high} [lon, lat] points")
        points: list[tuple[float, float]] = []
        for point in raw:
            if (
                not isinstance(point, list)
                or len(point) != 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
                or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90)
            ):
                raise RegistryError(
                    f"{self.where(key)}: {point!r} is not a [lon, lat] point (GeoJSON order)"
                )
            points.append((float(point[0]), float(point[1])))
        return tuple(points)

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float:
        value = self.raw(key, ... if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"{self.where(key)} must be a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise RegistryError(f"{self.where(key)} = {value} must be within [{low}, {high}]")
        return float(value)

    def choice(self, key: str, kind: type[StrEnum], default: Any = ...) -> Any:
        value = self.raw(key, default)
        try:
            return kind(value)
        except ValueError:
            allowed = [k.value for k in kind]
            raise RegistryError(f"{self.where(key)} = {value!r} must be one of {allowed}") from None

    def finish(self) -> None:
        extra = set(self.item) - self.used
        if extra:
            raise RegistryError(f"{self.where(sorted(extra)[0])} is not a known field")
