"""Replay recorded events from a CSV or JSON-lines file, in real time or accelerated.

CSV has a header with `time,name,value` and optionally `duration`; JSON lines follow the line
protocol (`{"t": ..., "n": ..., "v": ...}`). Rows must be in time order. Times are kept (the
readings are the recorded ones) unless `retime` shifts the file to start now.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from edge.drivers import SensorEvent
from edge.drivers.lines import parse_line
from streetsense.errors import ConfigError, PayloadError

log = logging.getLogger(__name__)


class ReplayDriver:
    """Release a file's events when the virtual clock reaches their time."""

    def __init__(self, path: str, *, speed: float = 1.0, retime: bool = False) -> None:
        self._events = list(_read(Path(path)))
        self._speed = speed
        self._next = 0
        first = self._events[0].at if self._events else time.time()
        self._started_wall = time.monotonic()
        # The virtual clock starts at the file's first time (or now, when retimed).
        self._origin = time.time() if retime else first
        self._shift = self._origin - first
        self.finished = not self._events

    def now(self) -> float:
        """Return the virtual clock: file start + elapsed x speed."""
        return self._origin + (time.monotonic() - self._started_wall) * self._speed

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return the events whose time has come, waiting up to `timeout` seconds for one."""
        if self._next < len(self._events):
            due_in = (self._events[self._next].at + self._shift - self.now()) / self._speed
            if due_in > 0:
                time.sleep(min(timeout, due_in))
        released: list[SensorEvent] = []
        clock = self.now()
        while self._next < len(self._events):
            event = self._events[self._next]
            if event.at + self._shift > clock:
                break
            released.append(_shifted(event, self._shift))
            self._next += 1
        if self._next >= len(self._events) and not self.finished:
            self.finished = True
            log.info("replay finished: %d events", len(self._events))
        if not released and self.finished:
            time.sleep(timeout)
        return released

    def close(self) -> None:
        """Nothing to release: the file was read at start."""


def _shifted(event: SensorEvent, shift: float) -> SensorEvent:
    if not shift:
        return event
    return SensorEvent(event.at + shift, event.name, event.value, event.sub_id, event.duration)


def _read(path: Path) -> Iterator[SensorEvent]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the replay file {str(path)!r}: {exc}; fix driver.path"
        ) from exc
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("{"):
        rows: Iterator[str] = iter(lines)
    else:
        rows = _csv_as_lines(lines, path)
    for number, line in enumerate(rows, start=1):
        try:
            event = parse_line(line, time.time())
        except PayloadError as exc:
            raise ConfigError(f"replay file {str(path)!r} row {number}: {exc}") from exc
        if event is not None:
            yield event


def _csv_as_lines(lines: list[str], path: Path) -> Iterator[str]:
    reader = csv.DictReader(lines)
    missing = {"time", "name", "value"} - set(reader.fieldnames or ())
    if missing:
        raise ConfigError(
            f"replay file {str(path)!r} needs a CSV header with time,name,value[,duration] "
            f"(missing {sorted(missing)}) or JSON lines"
        )
    for row in reader:
        yield " ".join([row["time"], row["name"], row["value"], row.get("duration") or "0"])
