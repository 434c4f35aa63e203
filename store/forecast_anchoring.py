"""Re-anchor a stored forecast on a fresher live value, for every reader (feeds, dashboard).

A stored forecast starts from the latest bucket the analytics job saw. A reader holding a newer
value (a lot's live count, a segment's latest 5-minute bucket) shifts the forecast so that it
agrees with that value at its time, the shift fading with the series' half-life
(docs/forecasting.md, "Re-anchoring at read time"). Pure functions: no SQL here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from store.forecasts import Anchor, reanchor_shift


class Knot(NamedTuple):
    """One point of a forecast: its time, expected value and 80% band (a tuple: the feeds
    build tens of thousands per rebuild)."""

    at: datetime
    yhat: float
    lo80: float
    hi80: float


@dataclass(frozen=True, slots=True)
class Live:
    """The value a reader holds now and the time it describes."""

    value: float
    at: datetime


def value_at(knots: Sequence[Knot], moment: datetime) -> Knot | None:
    """Return the forecast at a moment, linear between knots (None outside their span).

    Args:
        knots: forecast points in time order (the anchor's observation may be the first).
        moment: when.

    Returns:
        The interpolated knot, or None before the first knot or after the last.
    """
    if not knots or moment < knots[0].at or moment > knots[-1].at:
        return None
    # bisect on the times: the feeds evaluate every series a few times per rebuild
    index = bisect.bisect_left(knots, moment, key=lambda knot: knot.at)
    after = knots[index]
    if after.at == moment or index == 0:
        return after
    before = knots[index - 1]
    share = (moment - before.at).total_seconds() / (after.at - before.at).total_seconds()
    return Knot(
        moment,
        before.yhat + share * (after.yhat - before.yhat),
        before.lo80 + share * (after.lo80 - before.lo80),
        before.hi80 + share * (after.hi80 - before.hi80),
    )


def with_anchor(knots: Sequence[Knot], anchor: Anchor | None) -> Sequence[Knot]:
    """Return the knots (in time order) led by the anchor's observation, the forecast's
    starting point."""
    if anchor is None or (knots and anchor.observed_at >= knots[0].at):
        return knots
    value = anchor.observed_value
    return [Knot(anchor.observed_at, value, value, value), *knots]


def reanchored_at(
    knots: Sequence[Knot],
    anchor: Anchor | None,
    live: Live | None,
    moments: Sequence[datetime],
    upper: float | None = None,
) -> tuple[list[Knot | None], bool]:
    """Return the forecast at each moment, re-anchored on the live value where it can be.

    The forecast is re-anchored when its run carries an anchor, the live value is not older
    than the anchor's observation, and the forecast reaches the live value's time; otherwise
    the stored forecast is returned as it is.

    Args:
        knots: the stored forecast points of one series' latest run, in time order.
        anchor: that run's anchor of the series (None: the run has none).
        live: the reader's fresh value (None: none, or not to be trusted).
        moments: when to evaluate (those before the live value's time are not shifted).
        upper: bound values and bands to [0, upper] (a lot's capacity); None: only >= 0.

    Returns:
        The knots (None outside the forecast's span) and whether they were re-anchored.
    """
    curve = with_anchor(knots, anchor)
    now = None
    if live is not None and anchor is not None and live.at >= anchor.observed_at:
        now = value_at(curve, live.at)
    anchored = now is not None
    out: list[Knot | None] = []
    for moment in moments:
        knot = value_at(curve, moment)
        if knot is not None and now is not None:
            assert anchor is not None and live is not None
            shift = reanchor_shift(anchor, now.yhat, live.value, live.at, moment)
            knot = Knot(moment, knot.yhat + shift, knot.lo80 + shift, knot.hi80 + shift)
        out.append(None if knot is None else _bounded(knot, upper))
    return out, anchored


def _bounded(knot: Knot, upper: float | None) -> Knot:
    top = float("inf") if upper is None else upper

    def clip(value: float) -> float:
        return min(max(value, 0.0), top)

    return Knot(knot.at, clip(knot.yhat), clip(knot.lo80), clip(knot.hi80))
