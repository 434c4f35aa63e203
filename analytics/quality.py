"""Screen series for sensor faults: readings outside [0, capacity] and stuck counters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from analytics.panel import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray, Panel

logger = logging.getLogger(__name__)

# A counter above capacity this often is broken, not briefly off: its other readings are suspect.
MAX_OVER_CAPACITY = 0.2
STUCK_SECONDS = 2 * SECONDS_PER_DAY


@dataclass(frozen=True, slots=True)
class Screening:
    """The screened panel and what was masked or excluded, and why."""

    panel: Panel
    notes: tuple[str, ...]


def screen(panel: Panel) -> Screening:
    """Mask faulty readings as gaps and exclude series whose counter is broken.

    Readings outside [0, capacity] and runs of one unchanged value lasting two days or more are
    masked (set to NaN: the returned data hold gaps, never invented values). A series above its
    capacity in more than 20% of readings is excluded.
    """
    values = panel.values.copy()
    series = np.repeat(np.arange(panel.n_series), panel.lengths)
    capacity = panel.capacity[series]
    observed = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        over = observed & np.isfinite(capacity) & ((values > capacity) | (values < 0))
    stuck = _stuck(values, series, STUCK_SECONDS // panel.step)
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
    for i in np.flatnonzero(np.bincount(series, weights=stuck, minlength=panel.n_series)):
        notes.append(f"{panel.ids[i]}: unchanged for two days or more; those readings masked")
    values[over | stuck] = np.nan
    keep = np.flatnonzero(over_share <= MAX_OVER_CAPACITY)
    for i in np.flatnonzero(over_share > MAX_OVER_CAPACITY):
        notes.append(f"{panel.ids[i]}: excluded, counter above capacity too often to trust")
    for note in notes:
        logger.warning("%s", note)
    masked = Panel(values, panel.indptr, panel.step, panel.end, panel.ids, panel.capacity)
    return Screening(masked.select(keep.astype(np.int64)), tuple(notes))


def _stuck(values: FloatArray, series: IntArray, limit: int) -> BoolArray:
    """Return True on readings inside a run of one repeated value at least `limit` long."""
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    # A run continues while the value and the series stay the same; gaps end a run.
    same = np.concatenate(([False], (values[1:] == values[:-1]) & (series[1:] == series[:-1])))
    run_id = np.cumsum(~same)
    run_length = np.bincount(run_id)
    stuck: BoolArray = (run_length[run_id] >= limit) & ~np.isnan(values)
    return stuck
