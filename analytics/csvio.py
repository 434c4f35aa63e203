"""Read long-form CSV (`series_id,timestamp,value[,capacity]`) into a panel."""

from __future__ import annotations

import csv
import logging
import math
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TextIO

import numpy as np

from analytics.csvdialect import REQUIRED, DialectError, detect, number
from analytics.localtime import zone_of
from analytics.panel import SECONDS_PER_DAY, FloatArray, Panel, from_long
from streetsense.errors import ConfigError

logger = logging.getLogger(__name__)

# Bounds that keep a hostile or mistaken file from exhausting memory; each refusal names the
# fix. 50 M slots are 400 MB per copy of the grid (the backtest holds a few); 30 M readings
# are 1 GB of columns, far more than any city's months of parking or traffic data in one file.
MAX_GRID_CELLS = 50_000_000
MAX_READINGS = 30_000_000
MAX_FIELD_CHARS = 131_072
MAX_ID_CHARS = 200
_FREQ = re.compile(r"^\s*(\d+)\s*(s|sec|min|t|h|d)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "min": 60, "t": 60, "h": 3600, "d": SECONDS_PER_DAY}


class InputError(ConfigError):
    """The input file or an option is unusable; the message names the cause and the fix.

    A user's input to a command is configuration in the kernel's terms, so the `streetsense`
    command reports it like any other settings error (exit status 2, no traceback).
    """


def parse_zone(name: str) -> tzinfo:
    """Return the IANA time zone called `name` (UTC for 'UTC')."""
    try:
        return zone_of(name) or UTC
    except ValueError as exc:
        raise InputError(f"--timezone: {exc}") from exc


def parse_freq(text: str) -> int:
    """Return the step in seconds of a frequency such as '5min', '30min' or '1h'."""
    match = _FREQ.match(text)
    if match is None:
        raise InputError(
            f"unknown frequency '{text}'; give a number and a unit, e.g. 5min, 15min, 30min, 1h"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if seconds == 0 or SECONDS_PER_DAY % seconds:
        raise InputError(f"frequency '{text}' must divide a day evenly; try 5min, 30min or 1h")
    return seconds


def parse_steps(text: str, step: int, option: str) -> int:
    """Return a number of grid steps given as steps ('12') or a duration ('9h', '90min').

    Raises:
        InputError: not positive, or a duration that is not a whole number of steps.
    """
    if text.strip().isdigit():
        steps = int(text)
    else:
        match = _FREQ.match(text)
        if match is None:
            raise InputError(
                f"{option} '{text}': give a number of steps (12) or a duration (9h, 90min, 1d)"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds % step:
            raise InputError(
                f"{option} '{text}' is not a whole number of {step // 60}-minute steps; "
                "give a multiple of --freq"
            )
        steps = seconds // step
    if steps < 1:
        raise InputError(f"{option} must be at least one step")
    return steps


def parse_time(text: str, zone: tzinfo = UTC) -> float:
    """Return the epoch seconds of an ISO 8601 timestamp; one without offset is in `zone`.

    A local time that occurs twice (when clocks go back) is taken as the first.
    """
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def read_csv(
    path: Path, step: int, zone: tzinfo = UTC, columns: Mapping[str, str] | None = None
) -> Panel:
    """Read the file and align every series to a grid of `step` seconds.

    Timestamps without an offset are local times in `zone`. A series' capacity is the largest
    of its readings' (`read_csv_capacities` gives each reading's).

    Raises:
        InputError: the file is missing, lacks a column, or has an unreadable row; the message
            gives the line number and how to fix it.
    """
    return read_csv_capacities(path, step, zone, columns)[0]


def read_csv_capacities(
    path: Path, step: int, zone: tzinfo = UTC, columns: Mapping[str, str] | None = None
) -> tuple[Panel, Panel | None]:
    """Return `read_csv`'s panel and, with a capacity column, each reading's capacity on the
    same grid (the same series, slots and ends; NaN where a reading had none), else None.

    The delimiter (`,` `;` tab `|`) is read off the header; with one other than `,`, numbers
    may use a decimal comma. Column names match whatever their case; `columns` maps ours to
    the file's (`{"value": "vehiclecount"}`). A capacity of 0 or below counts as unknown.

    Raises:
        InputError: the file is missing, not UTF-8 text, too large, lacks a column, or has an
            unreadable row; the message gives the line number and how to fix it.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}; check the path") from exc
    with handle:
        try:
            readings = _readings(handle, path, zone, columns)
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save it as "
                "'CSV UTF-8' or convert it, e.g. iconv -f CP1252 -t UTF-8"
            ) from None
    return readings.grid(path, step)


@dataclass(slots=True)
class _Readings:
    """A file's readings as columns, with the lines of its earliest and latest timestamps."""

    codes: dict[str, int] = field(default_factory=dict)
    series: array[int] = field(default_factory=lambda: array("q"))
    seconds: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))
    each: array[float] | None = None
    capacity: dict[int, float] = field(default_factory=dict)
    # (epoch second, line, text as written) of the earliest and the latest timestamp
    earliest: tuple[float, int, str] = (math.inf, 0, "")
    latest: tuple[float, int, str] = (-math.inf, 0, "")
    unknown_capacity: int = 0

    def add(
        self, name: str, stamp: float, text: str, line: int, value: float, bound: float | None
    ) -> None:
        """Append one reading stamped `text` (`stamp` in epoch seconds) on `line`; `bound` is
        its capacity (None without the column)."""
        code = self.codes.setdefault(name, len(self.codes))
        self.series.append(code)
        self.seconds.append(stamp)
        self.values.append(value)
        if stamp < self.earliest[0]:
            self.earliest = (stamp, line, text)
        if stamp > self.latest[0]:
            self.latest = (stamp, line, text)
        if bound is None or self.each is None:
            return
        if bound <= 0:  # feeds write 0 (or worse) for "not known"; no value fits under it
            self.unknown_capacity += 1
            bound = math.nan
        self.each.append(bound)
        if math.isfinite(bound):
            self.capacity[code] = max(self.capacity.get(code, 0.0), bound)

    def grid(self, path: Path, step: int) -> tuple[Panel, Panel | None]:
        """Return the readings aligned to a grid of `step` seconds, capacities likewise.

        Raises:
            InputError: the grid would not fit in memory (an absurd timestamp, or a --freq
                far finer than the data).
        """
        if not self.series:
            raise InputError(f"{path}: no data rows; add rows of series_id,timestamp,value")
        if self.unknown_capacity:
            logger.warning(
                "%s: capacity of 0 or below taken as unknown in %d readings",
                path, self.unknown_capacity,
            )  # fmt: skip
        first, last = (
            math.floor((t + step // 2) / step) for t in (self.earliest[0], self.latest[0])
        )
        cells = len(self.codes) * (last - first + 1)
        if cells > MAX_GRID_CELLS:
            raise InputError(
                f"{path}: readings run from {_shown(self.earliest[2])} (line {self.earliest[1]}) "
                f"to {_shown(self.latest[2])} (line {self.latest[1]}): {len(self.codes)} series "
                f"on a {step}-second grid would need {cells:,} slots, more than "
                f"{MAX_GRID_CELLS:,}; correct a wrong date, or give a coarser --freq or fewer "
                "months of data"
            )
        bounds = np.array([self.capacity.get(i, np.nan) for i in range(len(self.codes))])
        codes = np.frombuffer(self.series, dtype=np.int64)
        epochs = np.rint(np.frombuffer(self.seconds, dtype=np.float64)).astype(np.int64)
        ids = tuple(self.codes)

        def grid(of: array[float], bound: FloatArray | None) -> Panel:
            values = np.frombuffer(of, dtype=np.float64)
            return from_long(codes, epochs, values, ids=ids, step=step, capacity=bound)

        return grid(self.values, bounds), (grid(self.each, None) if self.each is not None else None)


def _shown(text: str) -> str:
    """Return a field for a message: quoted, cut short, control characters escaped."""
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def _readings(
    handle: TextIO, path: Path, zone: tzinfo, columns: Mapping[str, str] | None
) -> _Readings:
    """Parse the header and the data rows into columns."""
    try:
        dialect = detect(handle.readline(MAX_FIELD_CHARS).rstrip("\r\n"), columns)
    except DialectError as exc:
        raise InputError(f"{path}: {exc}") from None
    index = dialect.index
    sid, when, val = (index[name] for name in REQUIRED)
    cap = index.get("capacity")
    width = 1 + max(index.values())
    reader = csv.reader(handle, delimiter=dialect.delimiter)
    readings = _Readings(each=array("d") if cap is not None else None)
    try:
        for row in reader:
            line = reader.line_num + 1  # the header was read before the reader started
            if not any(cell.strip() for cell in row):
                continue
            if len(readings.series) >= MAX_READINGS:
                raise InputError(
                    f"{path}: more than {MAX_READINGS:,} readings; split the file by series or "
                    "keep fewer months"
                )
            if len(row) < width:
                raise InputError(f"{path}:{line}: expected {width} fields, found {len(row)}")
            stamp = _stamp(row[when], zone, path, line)
            try:
                value = number(row[val], dialect.decimal_comma)
                bound = None if cap is None else number(row[cap], dialect.decimal_comma)
            except ValueError:
                raise InputError(
                    f"{path}:{line}: value or capacity is not a finite number; leave it empty "
                    "if missing"
                ) from None
            name = row[sid].strip()
            if not name.isprintable() or len(name) > MAX_ID_CHARS:
                raise InputError(
                    f"{path}:{line}: series_id {_shown(name)} holds a control character or is "
                    f"longer than {MAX_ID_CHARS} characters; give each series a short plain name"
                )
            readings.add(name, stamp, row[when], line, value, bound)
    except csv.Error as exc:
        raise InputError(
            f"{path}:{reader.line_num + 1}: unreadable row ({exc}); check its quotes and line ends"
        ) from None
    return readings


def _stamp(text: str, zone: tzinfo, path: Path, line: int) -> float:
    """Return a row's timestamp in epoch seconds.

    Raises:
        InputError: not an ISO 8601 timestamp, or one outside the years a computer counts.
    """
    try:
        return parse_time(text, zone)
    except (ValueError, OverflowError):
        raise InputError(
            f"{path}:{line}: bad timestamp {_shown(text)}; use ISO 8601, "
            "e.g. 2014-05-22T09:30:00Z (no offset means --timezone, default UTC)"
        ) from None
