"""Traffic incident detection on whole arrays of segments (the rule and the benchmark share it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatMatrix = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class IncidentParams:
    """The traffic_incident rule's parameters."""

    intervals: int = 2
    below_band_kmh: float = 3.0
    below_forecast_share: float = 0.8
    min_vehicles: float = 10.0
    collapse_flow_share: float = 0.3
    collapse_occupancy: float = 35.0
    severe_share: float = 0.0
    shift_intervals: int = 2
    history_weeks: int = 4


@dataclass(frozen=True, slots=True)
class IncidentFlags:
    """Per segment: whether an incident shows now, whether the latest interval is still bad,
    how far below the band the latest speed is (km/h, NaN without a band) and why."""

    fire: BoolArray
    hold: BoolArray
    below_kmh: FloatMatrix
    collapse: BoolArray


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


def detect(
    speed: FloatMatrix,
    lo80: FloatMatrix,
    yhat: FloatMatrix,
    vehicles: FloatMatrix,
    occupancy: FloatMatrix,
    capacity_vph: FloatMatrix,
    params: IncidentParams,
    interval_s: float = 300.0,
    usual_low: FloatMatrix | None = None,
) -> IncidentFlags:
    """Flag segments whose last `intervals` intervals were all slow or collapsed.

    An interval is slow when enough vehicles were measured (`min_vehicles`: a few cars at
    night say little) and their speed is both more than `below_band_kmh` under the forecast's
    lower 80% edge and under `below_forecast_share` of the forecast itself (a narrow band alone
    would flag ordinary noise). An interval under `severe_share` of the forecast fires at once:
    a road at a third of its usual speed needs no second interval to be believed.

    Args:
        speed, lo80, yhat, vehicles, occupancy: (segments, k) matrices, the newest interval
            last; NaN where unknown (no data, no forecast yet). A missing band never flags speed.
        capacity_vph: (segments,) the road's capacity.
        params: the rule's thresholds.
        interval_s: the length of one interval.
        usual_low: (segments, k) the speed this road fell to at the same time of week in at
            least two of the last weeks (recurrent_low here, store.alerts_inputs.recurrent_lows
            in the database); an interval no slower is recurrent congestion, not an incident.
            NaN or None: no such history, no such check.
    """
    flow_vph = vehicles * 3600.0 / interval_s
    with np.errstate(invalid="ignore"):
        slow = (
            (vehicles >= params.min_vehicles)
            & (speed < lo80 - params.below_band_kmh)
            & (speed < params.below_forecast_share * yhat)
        )
        if usual_low is not None:
            slow &= ~(speed >= usual_low - params.below_band_kmh)
        collapse = (flow_vph < params.collapse_flow_share * capacity_vph[:, None]) & (
            occupancy > params.collapse_occupancy
        )
        # so far below the forecast that one interval is enough (0: always wait for `intervals`)
        severe = slow & (speed < params.severe_share * yhat)
    bad = slow | collapse
    k = params.intervals
    fire: BoolArray = (
        np.all(bad[:, -k:], axis=1) if bad.shape[1] >= k else np.zeros(len(bad), dtype=bool)
    )
    if bad.shape[1]:
        fire |= severe[:, -1]
    return IncidentFlags(
        fire=fire,
        hold=bad[:, -1] if bad.shape[1] else np.zeros(len(bad), dtype=bool),
        below_kmh=(lo80 - speed)[:, -1] if bad.shape[1] else np.full(len(bad), np.nan),
        collapse=collapse[:, -1] if bad.shape[1] else np.zeros(len(bad), dtype=bool),
    )


def recurrent_low(
    weekly: FloatMatrix, vehicles: FloatMatrix, shift: int, min_vehicles: float
) -> FloatMatrix:
    """Return the speed a road fell to at the same time of week in at least two past weeks.

    Args:
        weekly: (segments, weeks, k + 2 * shift) speeds at the judged intervals' times of week
            (and `shift` either side), one row per past week.
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
