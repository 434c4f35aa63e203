"""Forecasts as the feeds publish them: re-anchored on the value the same response shows now.

The context read keeps each series' stored forecast (its points, bands and anchor) as a
`Curve`; a lot's or segment's view turns it into values at +15/+30/+60 minutes from the moment
the view is built, shifted so that the forecast agrees with the live count (lots) or the
latest 5-minute bucket (segments), the difference fading with the series' half-life.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from feeds.formats import iso
from feeds.model import HORIZONS_MIN, Forecast, SegmentView
from store.feeds_reads import ForecastPoint
from store.forecast_anchoring import Knot, Live, reanchored_at
from store.forecasts import Anchor

FLOW_BUCKET_S: Final = 300  # the live flow is a 5-minute count


@dataclass(frozen=True, slots=True)
class Curve:
    """One series' stored forecast near now: points with bands, anchor, run facts."""

    knots: tuple[Knot, ...]
    anchor: Anchor | None
    issued_at: datetime
    step_seconds: int


def curves(points: list[ForecastPoint]) -> dict[str, Curve]:
    """Group forecast points (ordered by series and time) into one curve per series."""
    return dict(_curves(points))


def _curves(points: list[ForecastPoint]) -> Iterator[tuple[str, Curve]]:
    for series_id, group in itertools.groupby(points, key=lambda p: p.series_id):
        steps = list(group)
        first = steps[0]
        anchor = None
        if first.anchor_at is not None and first.anchor_value is not None:
            anchor = Anchor(first.anchor_at, first.anchor_value, first.half_life_s)
        knots = tuple(Knot(p.at, p.yhat, p.lo80, p.hi80) for p in steps)
        yield series_id, Curve(knots, anchor, max(p.issued_at for p in steps), first.step_seconds)


def _moments(now: datetime) -> list[datetime]:
    return [now + timedelta(minutes=m) for m in HORIZONS_MIN]


def missing(reason: str) -> Forecast:
    """Return a forecast without values, carrying why."""
    return Forecast(values=(None,) * len(HORIZONS_MIN), issued_at=None, reason=reason)


def lot_forecast(
    curve: Curve | None,
    reason: str,
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
    knots, anchored = reanchored_at(curve.knots, curve.anchor, live, _moments(now), capacity)
    if all(k is None for k in knots):
        return missing(reason)

    def free(knot: Knot | None, field: str) -> float | None:
        if knot is None:
            return None
        return float(max(0, min(capacity, round(capacity - getattr(knot, field)))))

    # free spaces: the band's low end is where the most spaces are taken
    return _forecast(curve, knots, free, ("hi80", "lo80"), now, now if anchored else None)


def segment_forecast(
    curve: Curve | None,
    reason: str,
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
    knots, anchored = reanchored_at(curve.knots, curve.anchor, anchor_on, _moments(now))
    if all(k is None for k in knots):
        return missing(reason)

    def rounded(knot: Knot | None, field: str) -> float | None:
        return None if knot is None else round(float(getattr(knot, field)) * scale, 1)

    return _forecast(curve, knots, rounded, ("lo80", "hi80"), now, live_at if anchored else None)


def _forecast(
    curve: Curve,
    knots: list[Knot | None],
    shown: Callable[[Knot | None, str], float | None],
    band: tuple[str, str],
    start: datetime,
    anchored_at: datetime | None,
) -> Forecast:
    """Return the published forecast of re-anchored knots (`band`: the knot fields giving
    its low and high ends, as `shown` turns them into published values)."""
    low, high = band
    return Forecast(
        values=tuple(shown(k, "yhat") for k in knots),
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
    reason: str,
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
    moments = [start + timedelta(minutes=m) for m in range(step_min, horizon_min + 1, step_min)]
    live_at = None if segment.stale else segment.bucket
    flows: list[Knot | None] = [None] * len(moments)
    speeds: list[Knot | None] = [None] * len(moments)
    flow_anchored = speed_anchored = False
    if flow is not None:
        # vehicles per step to vehicles per 5 minutes, as the segment's own count
        scale = FLOW_BUCKET_S / flow.step_seconds
        count = None if segment.stale else segment.vehicle_count
        live = None if count is None or live_at is None else Live(count / scale, live_at)
        flows, flow_anchored = reanchored_at(flow.knots, flow.anchor, live, moments)
        flows = [None if k is None else _scaled(k, scale) for k in flows]
    if speed is not None:
        mean = None if segment.stale else segment.mean_speed
        live = None if mean is None or live_at is None else Live(mean, live_at)
        speeds, speed_anchored = reanchored_at(speed.knots, speed.anchor, live, moments)
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
            for minutes, moment, f, v in zip(
                range(step_min, horizon_min + 1, step_min), moments, flows, speeds, strict=True
            )
            if f is not None or v is not None
        ],
        "reason": None if has_values else reason,
    }


def _scaled(knot: Knot, scale: float) -> Knot:
    return Knot(knot.at, knot.yhat * scale, knot.lo80 * scale, knot.hi80 * scale)


def _step(minutes: int, moment: datetime, flow: Knot | None, speed: Knot | None) -> dict[str, Any]:
    def one(knot: Knot | None, field: str, per: float = 1.0) -> float | None:
        return None if knot is None else round(float(getattr(knot, field)) * per, 1)

    return {
        "minutes_ahead": minutes,
        "at": iso(moment),
        "vehicle_count": one(flow, "yhat"),
        "vehicle_count_lo80": one(flow, "lo80"),
        "vehicle_count_hi80": one(flow, "hi80"),
        "flow_vph": one(flow, "yhat", 3600 / FLOW_BUCKET_S),
        "mean_speed": one(speed, "yhat"),
        "mean_speed_lo80": one(speed, "lo80"),
        "mean_speed_hi80": one(speed, "hi80"),
    }
