"""Read long-form CSV (`series_id,timestamp,value[,capacity]`) into a panel."""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import numpy as np

from analytics.localtime import zone_of
from analytics.panel import SECONDS_PER_DAY, FloatArray, Panel, from_long
from streetsense.errors import ConfigError

REQUIRED = ("series_id", "timestamp", "value")
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


def _number(text: str) -> float:
    """Return the float in `text`, NaN for an empty field."""
    return math.nan if not text.strip() else float(text)


def read_csv(path: Path, step: int, zone: tzinfo = UTC) -> Panel:
    """Read the file and align every series to a grid of `step` seconds.

    Timestamps without an offset are local times in `zone`. A series' capacity is the largest
    of its readings' (`read_csv_capacities` gives each reading's).

    Raises:
        InputError: the file is missing, lacks a column, or has an unreadable row; the message
            gives the line number and how to fix it.
    """
    return read_csv_capacities(path, step, zone)[0]


def read_csv_capacities(path: Path, step: int, zone: tzinfo = UTC) -> tuple[Panel, Panel | None]:
    """Return `read_csv`'s panel and, with a capacity column, each reading's capacity on the
    same grid (the same series, slots and ends; NaN where a reading had none), else None.

    Raises:
        InputError: the file is missing, lacks a column, or has an unreadable row; the message
            gives the line number and how to fix it.
    """
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}; check the path") from exc
    with handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in REQUIRED if name not in header]
        if missing:
            raise InputError(
                f"{path}: missing column {', '.join(repr(m) for m in missing)}; the header must "
                "be series_id,timestamp,value (optionally ,capacity)"
            )
        return _rows(reader, header, path, step, zone)


def _rows(
    reader: csv.Reader,  # type: ignore[name-defined]
    header: list[str],
    path: Path,
    step: int,
    zone: tzinfo,
) -> tuple[Panel, Panel | None]:
    """Parse data rows into a panel and, with a capacity column, a panel of capacities."""
    sid, when, val = (header.index(name) for name in REQUIRED)
    cap = header.index("capacity") if "capacity" in header else None
    codes: dict[str, int] = {}
    series: list[int] = []
    seconds: list[float] = []
    values: list[float] = []
    capacity: dict[int, float] = {}
    each: list[float] = []
    for row in reader:
        line = reader.line_num
        if not row or not any(field.strip() for field in row):
            continue
        if len(row) < len(header):
            raise InputError(f"{path}:{line}: expected {len(header)} fields, found {len(row)}")
        try:
            stamp = parse_time(row[when], zone)
        except ValueError:
            raise InputError(
                f"{path}:{line}: bad timestamp '{row[when]}'; use ISO 8601, "
                "e.g. 2014-05-22T09:30:00Z (no offset means --timezone, default UTC)"
            ) from None
        code = codes.setdefault(row[sid].strip(), len(codes))
        try:
            values.append(_number(row[val]))
            if cap is not None:
                each.append(_number(row[cap]))
                if row[cap].strip():
                    capacity[code] = max(capacity.get(code, 0.0), each[-1])
        except ValueError:
            raise InputError(
                f"{path}:{line}: value or capacity is not a number; leave it empty if missing"
            ) from None
        series.append(code)
        seconds.append(stamp)
    if not series:
        raise InputError(f"{path}: no data rows; add rows of series_id,timestamp,value")
    capacities = np.array([capacity.get(i, np.nan) for i in range(len(codes))])
    codes_array = np.asarray(series, dtype=np.int64)
    epochs = np.rint(np.asarray(seconds)).astype(np.int64)

    def grid(of: list[float], bound: FloatArray | None) -> Panel:
        return from_long(
            codes_array, epochs, np.asarray(of, dtype=np.float64),
            ids=tuple(codes), step=step, capacity=bound,
        )  # fmt: skip

    return grid(values, capacities), (grid(each, None) if cap is not None else None)
