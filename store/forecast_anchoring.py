"""Re-anchor a stored forecast on a fresher live value, for every reader (feeds, dashboard).

A stored forecast starts from the latest bucket the analytics job saw. A reader holding a newer
value (a lot's live count, a segment's latest 5-minute bucket) shifts the forecast so that it
agrees with that value at its time, the shift fading with the series' half-life
(docs/forecasting.md, "Re-anchoring at read time"). Pure functions: no SQL here.

The feeds re-anchor every lot and segment a few times a minute, so a forecast is held as
parallel lists of floats, times in epoch seconds, and evaluated by bisection.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class Point(NamedTuple):
    """A forecast at one moment (epoch seconds): expected value and 80% band."""

    at: float
    yhat: float
    lo80: float
    hi80: float


@dataclass(frozen=True, slots=True)
class Curve:
    """One series' stored forecast: its points in time order, led by the observation the run
    started from (`anchored_from`, None: the run stored no anchor), and the half-life at
    which a departure from it fades (None: it persists)."""

    times: list[float]
    yhat: list[float]
    lo80: list[float]
    hi80: list[float]
    anchored_from: float | None
    half_life_s: float | None


@dataclass(frozen=True, slots=True)
class Live:
    """The value a reader holds now and the time it describes."""

    value: float
    at: datetime


def curve(
    times: Sequence[float],
    yhat: Sequence[float],
    lo80: Sequence[float],
    hi80: Sequence[float],
    anchor: tuple[datetime, float, float | None] | None,
) -> Curve:
    """Return a forecast's curve: its points (times in epoch seconds, ascending) led by its
    anchor (observed at, observed value, half-life seconds or None), when the run stored one
    and it precedes the points."""
    if anchor is None:
        return Curve(list(times), list(yhat), list(lo80), list(hi80), None, None)
    observed_at, value, half_life = anchor
    at = observed_at.timestamp()
    if times and at >= times[0]:
        return Curve(list(times), list(yhat), list(lo80), list(hi80), at, half_life)
    return Curve(
        [at, *times], [value, *yhat], [value, *lo80], [value, *hi80], at, half_life
    )  # fmt: skip


def value_at(forecast: Curve, at: float) -> Point | None:
    """Return the forecast at a moment (epoch seconds), linear between its points; None
    before the first point or after the last."""
    times = forecast.times
    if not times or at < times[0] or at > times[-1]:
        return None
    index = bisect.bisect_left(times, at)
    if times[index] == at:
        return Point(at, forecast.yhat[index], forecast.lo80[index], forecast.hi80[index])
    before = index - 1
    share = (at - times[before]) / (times[index] - times[before])
    yhat, lo80, hi80 = forecast.yhat, forecast.lo80, forecast.hi80
    return Point(
        at,
        yhat[before] + share * (yhat[index] - yhat[before]),
        lo80[before] + share * (lo80[index] - lo80[before]),
        hi80[before] + share * (hi80[index] - hi80[before]),
    )


def reanchored_at(
    forecast: Curve,
    live: Live | None,
    moments: Sequence[float],
    upper: float | None = None,
) -> tuple[list[Point | None], bool]:
    """Return the forecast at each moment, re-anchored on the live value where it can be.

    The forecast is re-anchored when its run carries an anchor, the live value is not older
    than it, and the forecast reaches the live value's time: every point at or after that time
    (band included) moves by (live - forecast then) * 0.5 ** (age / half-life), no fading
    without a half-life. Otherwise the stored forecast is returned as it is.

    Args:
        forecast: one series' stored curve.
        live: the reader's fresh value (None: none, or not to be trusted).
        moments: when to evaluate, epoch seconds (those before the live value are not moved).
        upper: bound values and bands to [0, upper] (a lot's capacity); None: only >= 0.

    Returns:
        The points (None outside the forecast's span) and whether they were re-anchored.
    """
    departure, live_at = 0.0, 0.0
    anchored = False
    if live is not None and forecast.anchored_from is not None:
        live_at = live.at.timestamp()
        now = value_at(forecast, live_at) if live_at >= forecast.anchored_from else None
        if now is not None:
            departure, anchored = live.value - now.yhat, True
    top = float("inf") if upper is None else upper
    half_life = forecast.half_life_s
    out: list[Point | None] = []
    for at in moments:
        point = value_at(forecast, at)
        if point is None:
            out.append(None)
            continue
        shift = 0.0
        if anchored and at >= live_at:
            fade = 1.0 if half_life is None else 0.5 ** ((at - live_at) / half_life)
            shift = departure * fade
        out.append(
            Point(
                at,
                min(max(point.yhat + shift, 0.0), top),
                min(max(point.lo80 + shift, 0.0), top),
                min(max(point.hi80 + shift, 0.0), top),
            )
        )
    return out, anchored
