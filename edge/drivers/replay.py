"""Replay recorded events from a CSV or JSON-lines file, in real time or accelerated.

CSV has a header with `time,name,value` and optionally `duration`; JSON lines follow the line
protocol (`{"t": ..., "n": ..., "v": ...}`). Rows must be in time order; the file is read as it
is replayed, so its size does not matter, and a bad row is logged and skipped. Times are kept
(the readings are the recorded ones) unless `retime` shifts the file to start now.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

from edge.drivers import SensorEvent
from edge.drivers.lines import parse_line
from streetsense.errors import ConfigError, PayloadError

log = logging.getLogger(__name__)


class ReplayDriver:
    """Release a file's events when the virtual clock reaches their time (read as it goes)."""

    def __init__(self, path: str, *, speed: float = 1.0, retime: bool = False) -> None:
        self._events = _read(Path(path))
        self._next = next(self._events, None)
        self._speed = speed
        self._count = 0
        first = self._next.at if self._next is not None else time.time()
        self._started_wall = time.monotonic()
        # The virtual clock starts at the file's first time (or now, when retimed).
        self._origin = time.time() if retime else first
        self._shift = self._origin - first
        self.finished = self._next is None

    def now(self) -> float:
        """Return the virtual clock: file start + elapsed x speed."""
        return self._origin + (time.monotonic() - self._started_wall) * self._speed

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return the events whose time has come, waiting up to `timeout` seconds for one."""
        if self._next is not None:
            due_in = (self._next.at + self._shift - self.now()) / self._speed
            if due_in > 0:
                time.sleep(min(timeout, due_in))
        elif self.finished:
            time.sleep(timeout)
        released: list[SensorEvent] = []
        clock = self.now()
        while self._next is not None and self._next.at + self._shift <= clock:
            released.append(_shifted(self._next, self._shift))
            self._next = next(self._events, None)
        self._count += len(released)
        if self._next is None and not self.finished:
            self.finished = True
            log.info("replay finished: %d events", self._count)
        return released

    def close(self) -> None:
        """Close the file."""
        self._events.close()


def _shifted(event: SensorEvent, shift: float) -> SensorEvent:
    if not shift:
        return event
    return SensorEvent(event.at + shift, event.name, event.value, event.sub_id, event.duration)


def _read(path: Path) -> Generator[SensorEvent, None, None]:
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the replay file {str(path)!r}: {exc}; fix driver.path"
        ) from exc
    with handle:
        first = handle.readline()
        handle.seek(0)
        jsonl = first.lstrip().startswith("{")
        rows: Iterator[str] = iter(handle) if jsonl else _csv_as_lines(handle, path)
        for number, line in enumerate(rows, start=1):
            try:
                event = parse_line(line, time.time())
            except PayloadError as exc:
                log.warning("replay file %s row %d skipped: %s", path, number, exc)
                continue
            if event is not None:
                yield event


def _csv_as_lines(lines: Iterable[str], path: Path) -> Iterator[str]:
    reader = csv.DictReader(lines)
    missing = {"time", "name", "value"} - set(reader.fieldnames or ())
    if missing:
        raise ConfigError(
            f"replay file {str(path)!r} needs a CSV header with time,name,value[,duration] "
            f"(missing {sorted(missing)}) or JSON lines"
        )
    for row in reader:
        yield " ".join([row["time"], row["name"], row["value"], row.get("duration") or "0"])
