"""Forecasts as the feeds publish them: re-anchored on the value the same response shows now.

The context read keeps each series' stored forecast (its points, bands and anchor) as a
`Curve`; a lot's or segment's view turns it into values at +15/+30/+60 minutes from the moment
the view is built, shifted so that the forecast agrees with the live count (lots) or the
latest 5-minute bucket (segments), the difference fading with the series' half-life.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from feeds.formats import iso
from feeds.model import HORIZONS_MIN, Forecast, SegmentView, Unavailable
from store import forecast_anchoring
from store.feeds_reads import ForecastSeries
from store.forecast_anchoring import Live, Point, reanchored_at

FLOW_BUCKET_S: Final = 300  # the live flow is a 5-minute count
YHAT, LO, HI = 1, 2, 3  # fields of a forecast_anchoring.Point
# How long a published forecast is kept while nothing it was built from changes: rebuilt every
# 30 s, it would only count its horizons from a newer moment, changing every response's ETag.
FORECAST_KEPT: Final = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Curve:
    """One series' stored forecast near now (points, bands, anchor) and its run's facts."""

    forecast: forecast_anchoring.Curve
    issued_at: datetime
    step_seconds: int


def curves(series: list[ForecastSeries]) -> dict[str, Curve]:
    """Return each series' curve by its id."""
    out = {}
    for one in series:
        anchor = None
        if one.anchor_at is not None and one.anchor_value is not None:
            anchor = (one.anchor_at, one.anchor_value, one.half_life_s)
        stored = forecast_anchoring.curve(one.times, one.yhat, one.lo80, one.hi80, anchor)
        out[one.series_id] = Curve(stored, one.issued_at, one.step_seconds)
    return out


def only_later(old: Forecast, new: Forecast, now: datetime) -> bool:
    """Tell whether `new` would only count `old` from a later moment: the same run, reason and
    opening status at each horizon, `old` younger than FORECAST_KEPT."""
    if old.start is not None and now - old.start >= FORECAST_KEPT:
        return False
    return (old.issued_at, old.reason_code, old.statuses) == (
        new.issued_at, new.reason_code, new.statuses
    )  # fmt: skip


def steady_segment(old: SegmentView | None, new: SegmentView, now: datetime) -> SegmentView:
    """Return `old` when the only news in `new` is its forecasts counted from a later moment
    (same bucket and everything else)."""
    if old is None or not (
        only_later(old.forecast, new.forecast, now)
        and only_later(old.speed_forecast, new.speed_forecast, now)
    ):
        return new
    kept = replace(new, forecast=old.forecast, speed_forecast=old.speed_forecast)
    return old if kept == old else new


def _moments(now: datetime) -> list[float]:
    start = now.timestamp()
    return [start + 60.0 * m for m in HORIZONS_MIN]


def missing(why: Unavailable) -> Forecast:
    """Return a forecast without values, carrying why."""
    return Forecast(
        values=(None,) * len(HORIZONS_MIN), issued_at=None, reason=why.reason, reason_code=why.code
    )


def lot_forecast(
    curve: Curve | None,
    reason: Unavailable,
    capacity: int,
    occupied: int | None,
    now: datetime,
    *,
    stale: bool,
) -> Forecast:
    """Return a lot's free spaces expected at each horizon from `now`, with their 80% band.

    Re-anchored on the live count when it is fresh; a stale count is not trusted to anchor.
    """
    if curve is None:
        return missing(reason)
    live = None if occupied is None or stale else Live(float(occupied), now)
    knots, anchored = reanchored_at(curve.forecast, live, _moments(now), capacity)
    if all(k is None for k in knots):
        return missing(reason)

    def free(knot: Point | None, field: int) -> float | None:
        if knot is None:
            return None
        return float(max(0, min(capacity, round(capacity - knot[field]))))

    # free spaces: the band's low end is where the most spaces are taken
    return _forecast(curve, knots, free, (HI, LO), now, now if anchored else None)


def segment_forecast(
    curve: Curve | None,
    reason: Unavailable,
    live: float | None,
    live_at: datetime | None,
    now: datetime,
    *,
    flow: bool,
) -> Forecast:
    """Return a segment's flow (vehicles per 5 min) or speed (km/h) expected at each horizon.

    Args:
        curve: the stored forecast of the stream (flow per step, or speed).
        reason: why there is none, when there is none.
        live: the latest complete 5-minute bucket's value (None: none, or stale).
        live_at: that bucket's start (the anchors' convention).
        now: when the horizons count from.
        flow: the curve counts vehicles per step (shown per 5 minutes).
    """
    if curve is None:
        return missing(reason)
    scale = FLOW_BUCKET_S / curve.step_seconds if flow else 1.0
    anchor_on = None
    if live is not None and live_at is not None:
        anchor_on = Live(live / scale, live_at)
    knots, anchored = reanchored_at(curve.forecast, anchor_on, _moments(now))
    if all(k is None for k in knots):
        return missing(reason)

    def rounded(knot: Point | None, field: int) -> float | None:
        return None if knot is None else round(knot[field] * scale, 1)

    return _forecast(curve, knots, rounded, (LO, HI), now, live_at if anchored else None)


def _forecast(
    curve: Curve,
    knots: list[Point | None],
    shown: Callable[[Point | None, int], float | None],
    band: tuple[int, int],
    start: datetime,
    anchored_at: datetime | None,
) -> Forecast:
    """Return the published forecast of re-anchored points (`band`: the point fields giving
    its low and high ends, as `shown` turns them into published values)."""
    low, high = band
    return Forecast(
        values=tuple(shown(k, YHAT) for k in knots),
        issued_at=curve.issued_at,
        reason=None,
        low=tuple(shown(k, low) for k in knots),
        high=tuple(shown(k, high) for k in knots),
        start=start,
        anchored_at=anchored_at,
    )


def segment_steps(
    segment: SegmentView,
    flow: Curve | None,
    speed: Curve | None,
    reason: Unavailable,
    start: datetime,
    horizon_min: int,
    step_min: int,
) -> dict[str, Any]:
    """Return a segment's flow and speed forecast every `step_min` up to `horizon_min`.

    Both are re-anchored on the segment's latest 5-minute bucket when it is fresh, so the
    steps continue from what the segment's own document says now.

    Args:
        segment: the segment as published (its latest bucket and freshness).
        flow: its stored flow forecast (vehicles per step), or None.
        speed: its stored speed forecast (km/h), or None.
        reason: why there is no forecast, when there is none.
        start: when the steps count from (the segment view's build time).
        horizon_min: how far ahead, minutes.
        step_min: the spacing of the steps, minutes.
    """
    ahead = range(step_min, horizon_min + 1, step_min)
    moments = [start.timestamp() + 60.0 * m for m in ahead]
    live_at = None if segment.stale else segment.bucket
    flows: list[Point | None] = [None] * len(moments)
    speeds: list[Point | None] = [None] * len(moments)
    flow_anchored = speed_anchored = False
    if flow is not None:
        # vehicles per step to vehicles per 5 minutes, as the segment's own count
        scale = FLOW_BUCKET_S / flow.step_seconds
        count = None if segment.stale else segment.vehicle_count
        live = None if count is None or live_at is None else Live(count / scale, live_at)
        flows, flow_anchored = reanchored_at(flow.forecast, live, moments)
        flows = [None if k is None else _scaled(k, scale) for k in flows]
    if speed is not None:
        mean = None if segment.stale else segment.mean_speed
        live = None if mean is None or live_at is None else Live(mean, live_at)
        speeds, speed_anchored = reanchored_at(speed.forecast, live, moments)
    issued = [c.issued_at for c in (flow, speed) if c is not None]
    has_values = any(k is not None for k in (*flows, *speeds))
    return {
        "segment": segment.id,
        "issued_at": iso(max(issued)) if issued else None,
        "from": iso(start),
        "horizon_min": horizon_min,
        "flow_anchored_at": iso(live_at) if flow_anchored else None,
        "speed_anchored_at": iso(live_at) if speed_anchored else None,
        "steps": [
            _step(minutes, moment, f, v)
            for minutes, moment, f, v in zip(ahead, moments, flows, speeds, strict=True)
            if f is not None or v is not None
        ],
        "reason": None if has_values else reason.reason,
        "reason_code": None if has_values else reason.code,
    }


def _scaled(knot: Point, scale: float) -> Point:
    return Point(knot.at, knot.yhat * scale, knot.lo80 * scale, knot.hi80 * scale)


def _step(minutes: int, moment: float, flow: Point | None, speed: Point | None) -> dict[str, Any]:
    def one(knot: Point | None, field: int, per: float = 1.0) -> float | None:
        return None if knot is None else round(knot[field] * per, 1)

    return {
        "minutes_ahead": minutes,
        "at": iso(datetime.fromtimestamp(moment, UTC)),
        "vehicle_count": one(flow, YHAT),
        "vehicle_count_lo80": one(flow, LO),
        "vehicle_count_hi80": one(flow, HI),
        "flow_vph": one(flow, YHAT, 3600 / FLOW_BUCKET_S),
        "mean_speed": one(speed, YHAT),
        "mean_speed_lo80": one(speed, LO),
        "mean_speed_hi80": one(speed, HI),
    }
