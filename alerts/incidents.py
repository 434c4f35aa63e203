"""Traffic incident detection on whole arrays of segments (the rule and the benchmark share it).

The rule judges the raw readings as they arrive, on a grid of minutes: each reading sits at
the minute its interval starts (one column per minute for the edge agents' 1-minute counts,
every fifth column for 5-minute data). A reading is judged on the rolling window of the
newest `window_min` minutes of data it ends (its own interval, and the ones before it within
the window), and a segment fires once its windows were slow through `slow_for_min` minutes
of data: with 1-minute readings a 5-minute window and 6 minutes mean two windows in a row
(10:00-10:05 and 10:01-10:06), with 5-minute readings two intervals in a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolMatrix = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class IncidentParams:
    """The traffic_incident rule's parameters."""

    window_min: float = 5.0
    slow_for_min: float = 6.0
    below_band_kmh: float = 3.0
    below_forecast_share: float = 0.8
    min_vehicles: float = 10.0
    collapse_flow_share: float = 0.3
    collapse_occupancy: float = 35.0
    queue_flow_share: float = 0.6
    severe_share: float = 0.0
    shift_intervals: int = 3
    history_weeks: int = 4


@dataclass(frozen=True, slots=True)
class Readings:
    """Per segment (rows) and minute (columns, oldest first): the readings starting there,
    lanes summed (NaN: no reading starts in that minute), and each segment's interval length."""

    vehicles: FloatMatrix
    speed: FloatMatrix  # weighted by vehicles over the lanes
    occupancy: FloatMatrix
    length_min: IntArray  # (segments,) minutes one reading covers


@dataclass(frozen=True, slots=True)
class Judged:
    """Per segment and minute, for the columns holding a reading: the window's speed, whether
    it was slow (or collapsed), severe enough alone, and for how many minutes of data the
    windows have been slow up to it (0 where not slow or no reading)."""

    speed: FloatMatrix
    slow: BoolMatrix
    severe: BoolMatrix
    collapse: BoolMatrix
    slow_min: FloatMatrix


def widen(values: FloatMatrix, shift: int, axis: int = 1) -> FloatMatrix:
    """Return the lowest value within `shift` steps either side along an axis (NaN ignored).

    Applied to the forecast band, a speed counts as slow only when it is under the band at its
    own time and at the times around it: the morning rush arriving ten minutes early is not
    an incident.
    """
    out = values.copy()
    moved = np.moveaxis(out, axis, 0)
    source = np.moveaxis(values, axis, 0)
    with np.errstate(invalid="ignore"):
        for step in range(1, shift + 1):
            moved[step:] = np.fmin(moved[step:], source[:-step])
            moved[:-step] = np.fmin(moved[:-step], source[step:])
    return out


def window_span(length_min: IntArray, window_min: float) -> IntArray:
    """Return per segment how many minute columns a window reaches back (itself included):
    a window is never shorter than one reading's interval."""
    span: IntArray = np.maximum(int(np.ceil(window_min)) - length_min + 1, 1)
    return span


def _trailing_sum(values: FloatMatrix, span: IntArray) -> FloatMatrix:
    """Return per column the sum of the `span` (per row) columns ending there (NaN as 0)."""
    total = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(np.nan_to_num(values), axis=1, out=total[:, 1:])
    columns = np.arange(values.shape[1])
    first = np.maximum(columns[None, :] - span[:, None] + 1, 0)
    rows = np.arange(values.shape[0])[:, None]
    sums: FloatMatrix = total[:, 1:] - total[rows, first]
    return sums


def judge(
    readings: Readings,
    lo80: FloatMatrix,
    yhat: FloatMatrix,
    capacity_vph: FloatMatrix,
    params: IncidentParams,
    usual_low: FloatMatrix | None = None,
) -> Judged:
    """Judge every reading on its rolling window and count how long the slowness has lasted.

    A window is slow when enough vehicles were measured in it (`min_vehicles`: a few cars at
    night say little) and their speed is both more than `below_band_kmh` under the forecast's
    lower 80% edge and under `below_forecast_share` of the forecast itself (a narrow band alone
    would flag ordinary noise), while fewer vehicles get through than `queue_flow_share` of the
    road's capacity: a queue that still flows near capacity is the road's own bottleneck at
    work (a rush hour's queue, whenever it forms), an incident cuts what gets through. A
    window under `severe_share` of the forecast fires at once.

    Args:
        readings: the segments' readings on the minute grid.
        lo80, yhat: (segments, minutes) the forecast band's lower edge and the forecast at each
            column (widened over the forecast's own intervals by the caller); NaN: no forecast,
            which never flags speed.
        capacity_vph: (segments,) the road's capacity (NaN or infinite: unknown, no flow check
            on slow speeds).
        params: the rule's thresholds.
        usual_low: (segments, minutes) the speed this road fell to near the same time of week
            in at least two of the last weeks; a window no slower is recurrent congestion, not
            an incident. NaN or None: no such history, no such check.
    """
    present = np.isfinite(readings.vehicles)
    span = window_span(readings.length_min, params.window_min)
    vehicles = _trailing_sum(readings.vehicles, span)
    weighted = _trailing_sum(readings.speed * readings.vehicles, span)
    timed = _trailing_sum(np.where(np.isfinite(readings.speed), readings.vehicles, 0.0), span)
    occupancy = _trailing_sum(readings.occupancy, span)
    measured = _trailing_sum(np.isfinite(readings.occupancy).astype(np.float64), span)
    minutes = _trailing_sum(present.astype(np.float64), span) * readings.length_min[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where(present & (timed > 0), weighted / timed, np.nan)
        flow_vph = vehicles * 60.0 / np.where(present, minutes, np.nan)
        slow = (
            present
            & (vehicles >= params.min_vehicles)
            & (speed < lo80 - params.below_band_kmh)
            & (speed < params.below_forecast_share * yhat)
        )
        if usual_low is not None:
            slow &= ~(speed >= usual_low - params.below_band_kmh)
        # NaN capacity compares False: the speed half then stands alone
        slow &= ~(flow_vph >= params.queue_flow_share * capacity_vph[:, None])
        collapse = (
            present
            & (flow_vph < params.collapse_flow_share * capacity_vph[:, None])
            & (occupancy / measured > params.collapse_occupancy)
        )
        severe = slow & (speed < params.severe_share * yhat)
    bad = slow | collapse
    return Judged(speed, bad, severe, collapse,
                  slow_minutes(bad, readings.length_min, params.window_min))  # fmt: skip


def slow_minutes(bad: BoolMatrix, length_min: IntArray, window_min: float) -> FloatMatrix:
    """Return per column the minutes of data covered by the run of bad windows ending there.

    A run is a reading's window and those of the readings just before it (one interval apart,
    none missing); it covers from the first window's start to the last reading's end: one
    5-minute window is 5 minutes, two 1-minute steps of it 6, two 5-minute intervals 10.
    """
    runs = np.zeros(bad.shape)
    rows = np.arange(bad.shape[0])
    for column in range(bad.shape[1]):
        before = column - length_min
        previous = np.where(before >= 0, runs[rows, np.maximum(before, 0)], 0.0)
        runs[:, column] = np.where(bad[:, column], previous + 1.0, 0.0)
    covered = np.maximum(length_min, np.ceil(window_min)).astype(np.float64)
    minutes = (runs - 1.0) * length_min[:, None] + covered[:, None]
    # no further back than the first column: a window there holds that much data only
    seen = np.arange(bad.shape[1])[None, :] + length_min[:, None]
    return np.where(runs > 0, np.minimum(minutes, seen), 0.0)


def recurrent_low(
    weekly: FloatMatrix, vehicles: FloatMatrix, shift: int, min_vehicles: float
) -> FloatMatrix:
    """Return the speed a road fell to at the same time of week in at least two past weeks.

    Args:
        weekly: (segments, weeks, k + 2 * shift) 5-minute speeds at the judged intervals' times
            of week (and `shift` either side), one row per past week.
        vehicles: the vehicles counted in those intervals (too few: the speed is ignored).
        shift: intervals either side a time of week may move.
        min_vehicles: vehicles an interval needs for its speed to count.

    Returns:
        (segments, k): the second lowest of the weeks' lowest speeds near each judged time
        (one bad week, such as last week's incident, does not make a slowdown usual); NaN
        with fewer than two weeks of data.
    """
    with np.errstate(invalid="ignore"):
        speeds = np.where(vehicles >= min_vehicles, weekly, np.nan)
    lowest = widen(speeds, shift, axis=2)[:, :, shift : speeds.shape[2] - shift]
    ordered = np.sort(lowest, axis=1)  # NaN last
    if ordered.shape[1] < 2:
        return np.full((ordered.shape[0], ordered.shape[2]), np.nan)
    return ordered[:, 1, :]
