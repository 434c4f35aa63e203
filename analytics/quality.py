"""Screen series for sensor faults: readings outside [0, capacity] and stuck counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from analytics.panel import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray, Panel
from analytics.readiness import MAX_OVER_CAPACITY, unforecastable

logger = logging.getLogger(__name__)

STUCK_SECONDS = 2 * SECONDS_PER_DAY
# Longer gaps end a run of one value: a night without readings does not, an outage does.
STUCK_GAP_SECONDS = SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class Screening:
    """The screened panel and what was masked or excluded, and why."""

    panel: Panel
    notes: tuple[str, ...]


def screen(panel: Panel) -> Screening:
    """Mask faulty readings as gaps and exclude series whose counter is broken.

    Readings outside [0, capacity] and runs of one unchanged value lasting two days or more are
    masked (set to NaN: the returned data hold gaps, never invented values); a run goes on
    across gaps of up to a day, so nightly gaps or a grid finer than the sampling do not hide
    it. A series above its capacity in more than 20% of readings is excluded, as is one left
    without a reading once its stuck runs are masked, or whose readings all hold one value (the
    job forecasts none of these: `analytics.readiness`).
    """
    values = panel.values.copy()
    series = np.repeat(np.arange(panel.n_series), panel.lengths)
    capacity = panel.capacity[series]
    observed = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        over = observed & np.isfinite(capacity) & ((values > capacity) | (values < 0))
    stuck = _stuck(values, series, panel.step)
    notes: list[str] = []
    over_count = np.bincount(series, weights=over, minlength=panel.n_series)
    over_share = over_count / np.maximum(
        np.bincount(series, weights=observed, minlength=panel.n_series), 1
    )
    for i in np.flatnonzero(over_count):
        notes.append(
            f"{panel.ids[i]}: {int(over_count[i])} readings ({over_share[i]:.1%}) outside "
            "[0, capacity] masked"
        )
    stuck_count = np.bincount(series, weights=stuck, minlength=panel.n_series)
    for i in np.flatnonzero(stuck_count):
        notes.append(
            f"{panel.ids[i]}: {int(stuck_count[i])} readings unchanged for two days or more "
            "(a stuck counter) masked"
        )
    values[over | stuck] = np.nan
    broken = over_share > MAX_OVER_CAPACITY
    for i in np.flatnonzero(broken):
        notes.append(f"{panel.ids[i]}: excluded, counter above capacity too often to trust")
    masked = Panel(values, panel.indptr, panel.step, panel.end, panel.ids, panel.capacity)
    # What the job would not forecast once the faulty readings are masked (the same judgement,
    # `analytics.readiness`): emptied by the masking, or one value throughout.
    excluded = broken.copy()
    for skip in unforecastable(masked):
        if excluded[skip.row] or skip.reason not in _UNSCORED:
            continue
        excluded[skip.row] = True
        notes.append(f"{panel.ids[skip.row]}: excluded, {_UNSCORED[skip.reason]}")
    for note in notes:
        logger.warning("%s", note)
    keep = np.flatnonzero(~excluded)
    return Screening(masked.select(keep.astype(np.int64)), tuple(notes))


# Reasons of `analytics.readiness` that leave a series out of scoring, as notes say them.
_UNSCORED = {
    "no_data": "no reading left once its stuck runs are masked",
    "constant": "every reading is one value (a stuck counter)",
}


def _stuck(values: FloatArray, series: IntArray, step: int) -> BoolArray:
    """Return True on readings inside a run of one repeated value spanning `STUCK_SECONDS`.

    A run is measured between its first and last readings, across gaps of up to
    `STUCK_GAP_SECONDS`: a counter read every hour on a 30-minute grid, or only by day, is as
    stuck as one read every slot.
    """
    observed = np.flatnonzero(~np.isnan(values))
    stuck = np.zeros(values.size, dtype=bool)
    if observed.size == 0:
        return stuck
    value, owner = values[observed], series[observed]
    # A run continues while the series and the value stay the same and the gap stays short.
    same = (
        (value[1:] == value[:-1])
        & (owner[1:] == owner[:-1])
        & (np.diff(observed) * step <= STUCK_GAP_SECONDS)
    )
    run_id = np.cumsum(np.concatenate(([True], ~same)))
    first = np.full(int(run_id[-1]) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.zeros_like(first)
    np.minimum.at(first, run_id, observed)
    np.maximum.at(last, run_id, observed)
    span = (last - first + 1) * step
    stuck[observed] = span[run_id] >= STUCK_SECONDS
    return stuck
