"""The traffic incident rule's view of the city: raw readings on a minute grid, judged.

Readings are read as they arrive, whatever interval the devices count in (the edge agents'
1-minute intervals, 5-minute data from older loops or a recording); the forecast band and
the weekly history stay on the 5-minute steps the forecasts and rollups use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from alerts.incidents import FloatMatrix, IncidentParams, IntArray, Judged, Readings, judge, widen
from alerts.snapshot import STEP, Snapshot
from store.alerts_inputs import Columns

MINUTE = 60.0
_FIVE = STEP.total_seconds()
# a segment with one reading in view: taken as 5-minute data, the rollups' step
_UNKNOWN_LENGTH_MIN = 5
# how long after its interval ended a reading still stands for now (delivery, one round)
_FRESH_S = 180.0


@dataclass(frozen=True, slots=True)
class Assessment:
    """Per segment (the ids' order), as of its newest complete reading."""

    fire: np.ndarray
    hold: np.ndarray
    speed: FloatMatrix  # the newest window's speed (km/h)
    below_kmh: FloatMatrix  # how far under the band's lower edge (NaN: no band)
    collapse: np.ndarray
    slow_min: FloatMatrix  # minutes of data the windows have been slow
    data_end: FloatMatrix  # epoch s the newest reading's interval ended (NaN: none)
    run_id: int | None


def params_of(values: Any) -> IncidentParams:
    """Return a rule's parameters as the detector takes them."""
    return IncidentParams(
        window_min=values["window_min"], slow_for_min=values["slow_for_min"],
        below_band_kmh=values["below_band_kmh"],
        below_forecast_share=values["below_forecast_share"],
        min_vehicles=values["min_vehicles"], collapse_flow_share=values["collapse_flow_share"],
        collapse_occupancy=values["collapse_occupancy"],
        queue_flow_share=values["queue_flow_share"], severe_share=values["severe_share"],
        shift_intervals=int(values["shift_intervals"]),
        history_weeks=int(values["history_weeks"]),
    )  # fmt: skip


def assess(snap: Snapshot, segs: Columns, params: IncidentParams) -> Assessment:
    """Judge every active segment's newest readings against its band and history.

    Only segments with a lane's reading beyond the loosest bound a window could cross (slower
    than the band allows anywhere in view, or occupied above `collapse_occupancy`) are read
    whole: a window's mean can only cross a bound one of its readings crosses, so the others
    hold nothing, and a quiet city costs one pass over its readings instead of pairing them all.
    """
    ids = [str(s) for s in segs["id"]]
    # the minutes a run as long as slow_for_min reaches back over, with its first window, and
    # at least two 5-minute intervals (to tell the readings' length)
    reach = max(int(np.ceil(params.slow_for_min + params.window_min)), 2 * 5) + 2
    start = (snap.epoch // MINUTE - reach) * MINUTE
    columns = max(int((snap.epoch - start) // MINUTE), 1)
    first_bucket = start // _FIVE * _FIVE
    last_bucket = (start + (columns - 1) * MINUTE) // _FIVE * _FIVE
    buckets = int((last_bucket - first_bucket) // _FIVE) + 1
    # each column's 5-minute step, counted from the first judged one
    step_of = ((start + np.arange(columns) * MINUTE - first_bucket) // _FIVE).astype(np.int64)
    lo80, yhat, run_id = _band(snap, ids, first_bucket, buckets, params.shift_intervals)
    with np.errstate(invalid="ignore"):
        bound = np.fmax.reduce(
            np.minimum(lo80 - params.below_band_kmh, params.below_forecast_share * yhat), axis=1
        )
    speed_below = dict(zip(ids, bound.tolist(), strict=True))
    wanted = set(snap.segments_reading_beyond(start, speed_below, params.collapse_occupancy))
    rows = np.array([i for i, segment in enumerate(ids) if segment in wanted], dtype=np.int64)
    found = _nothing(len(ids), run_id)
    if not rows.size:
        return found
    some = [ids[i] for i in rows]
    readings = minute_grid(snap.traffic_readings(start, some), some, start, snap.epoch)
    usual = (_usual(snap, some, last_bucket, buckets, params)[:, step_of]
             if params.history_weeks else None)  # fmt: skip
    band = lo80[rows][:, step_of]
    judged = judge(readings, band, yhat[rows][:, step_of], segs["capacity_vph"][rows], params,
                   usual)  # fmt: skip
    part = _newest(readings, judged, band, start, snap.epoch, params, run_id)
    for name in ("fire", "hold", "speed", "below_kmh", "collapse", "slow_min", "data_end"):
        getattr(found, name)[rows] = getattr(part, name)
    return found


def _nothing(segments: int, run_id: int | None) -> Assessment:
    """Return an assessment in which no segment holds."""
    return Assessment(
        fire=np.zeros(segments, dtype=bool), hold=np.zeros(segments, dtype=bool),
        speed=np.full(segments, np.nan), below_kmh=np.full(segments, np.nan),
        collapse=np.zeros(segments, dtype=bool), slow_min=np.zeros(segments),
        data_end=np.full(segments, np.nan), run_id=run_id,
    )  # fmt: skip


def minute_grid(cols: Columns, ids: list[str], start: float, now: float) -> Readings:
    """Place the segments' readings on minutes from `start` to `now`, lanes of a minute summed;
    a reading whose interval has not ended by `now` is left out."""
    columns = max(int((now - start) // MINUTE), 1)
    row_of = {segment: i for i, segment in enumerate(ids)}
    rows = np.array([row_of.get(str(s), -1) for s in cols["id"]], dtype=np.int64)
    at = cols["at"]
    length = _lengths(rows, at, len(ids))
    place = np.floor((at - start) / MINUTE).astype(np.int64)
    known = rows >= 0
    ok = known & (place >= 0) & (place < columns)
    ok[known] &= at[known] + length[rows[known]] * MINUTE <= now
    rows, place = rows[ok], place[ok]
    shape = (len(ids), columns)

    def summed(values: np.ndarray) -> FloatMatrix:
        out = np.zeros(shape)
        np.add.at(out, (rows, place), np.nan_to_num(values[ok]))
        return out

    present = np.zeros(shape, dtype=bool)
    present[rows, place] = True
    timed = summed(cols["timed"])
    measured = summed(np.isfinite(cols["occupancy"]).astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = summed(cols["speed"] * cols["timed"]) / timed
        occupancy = summed(cols["occupancy"]) / measured
    return Readings(
        np.where(present, summed(cols["vehicles"]), np.nan),
        np.where(present & (timed > 0), speed, np.nan),
        np.where(present & (measured > 0), occupancy, np.nan),
        length,
    )


def _lengths(rows: IntArray, at: FloatMatrix, segments: int) -> IntArray:
    """Return per segment the minutes one reading covers: the shortest gap between its
    readings' starts (lanes share a start)."""
    shortest = np.full(segments, np.inf)
    order = np.lexsort((at, rows))
    rows, at = rows[order], at[order]
    gap = np.diff(at)
    same = (rows[1:] == rows[:-1]) & (rows[1:] >= 0) & (gap > 0)
    np.minimum.at(shortest, rows[1:][same], gap[same])
    minutes = np.where(np.isfinite(shortest), np.rint(shortest / MINUTE), _UNKNOWN_LENGTH_MIN)
    lengths: IntArray = np.maximum(minutes, 1).astype(np.int64)
    return lengths


def _band(snap: Snapshot, ids: list[str], first: float, buckets: int,
          shift: int) -> tuple[FloatMatrix, FloatMatrix, int | None]:  # fmt: skip
    """Return (segments, buckets) the band's lower edge and forecast, each the lowest within
    `shift` steps either side, and the forecast run's id."""
    at = [datetime.fromtimestamp(first + k * _FIVE, UTC) for k in range(-shift, buckets + shift)]
    cols, run_id = snap.speed_band_at(at, datetime.fromtimestamp(first, UTC))
    lo, mean = _by_step(cols, "at", ("lo80", "yhat"), ids, first - shift * _FIVE, len(at))
    return (
        widen(lo, shift)[:, shift : shift + buckets],
        widen(mean, shift)[:, shift : shift + buckets],
        run_id,
    )


def _usual(snap: Snapshot, ids: list[str], last: float, buckets: int,
           params: IncidentParams) -> FloatMatrix:  # fmt: skip
    """Return (segments, buckets) the speed each road fell to near that time of week."""
    lows = snap.recurrent_lows(buckets, params.shift_intervals, params.history_weeks,
                               params.min_vehicles, datetime.fromtimestamp(last, UTC),
                               ids)  # fmt: skip
    usual = np.full((len(ids), buckets), np.nan)
    row_of = {segment: i for i, segment in enumerate(ids)}
    place = np.array([row_of.get(str(s), -1) for s in lows["id"]], dtype=np.int64)
    known = place >= 0
    usual[place[known], lows["judged"][known].astype(np.int64)] = lows["low"][known]
    return usual


def _by_step(cols: Columns, key: str, names: tuple[str, ...], ids: list[str], first: float,
             width: int) -> list[FloatMatrix]:  # fmt: skip
    """Return (segments, width) matrices of columns keyed by 5-minute step from `first`."""
    row_of = {segment: i for i, segment in enumerate(ids)}
    rows = np.array([row_of.get(str(s), -1) for s in cols["id"]], dtype=np.int64)
    slots = np.rint((cols[key] - first) / _FIVE).astype(np.int64)
    ok = (rows >= 0) & (slots >= 0) & (slots < width)
    out = []
    for name in names:
        values = np.full((len(ids), width), np.nan)
        values[rows[ok], slots[ok]] = cols[name][ok]
        out.append(values)
    return out


def _newest(readings: Readings, judged: Judged, lo80: FloatMatrix, start: float, now: float,
            params: IncidentParams, run_id: int | None) -> Assessment:  # fmt: skip
    """Return each segment's judgement at its newest reading, if that is recent."""
    present = np.isfinite(readings.vehicles)
    segments, columns = present.shape
    newest = columns - 1 - np.argmax(present[:, ::-1], axis=1)
    rows = np.arange(segments)
    end = start + (newest + readings.length_min) * MINUTE
    fresh = present.any(axis=1) & (end >= now - readings.length_min * MINUTE - _FRESH_S)
    hold = fresh & judged.slow[rows, newest]
    slow_min = np.where(hold, judged.slow_min[rows, newest], 0.0)
    fire = hold & ((slow_min >= params.slow_for_min) | judged.severe[rows, newest])
    return Assessment(
        fire=fire, hold=hold, speed=judged.speed[rows, newest],
        below_kmh=lo80[rows, newest] - judged.speed[rows, newest],
        collapse=hold & judged.collapse[rows, newest], slow_min=slow_min,
        data_end=np.where(fresh, end, np.nan), run_id=run_id,
    )  # fmt: skip


def since(assessment: Assessment, row: int) -> datetime:
    """Return when a segment's slow windows began (UTC)."""
    began = assessment.data_end[row] - assessment.slow_min[row] * MINUTE
    return datetime.fromtimestamp(began, UTC)
