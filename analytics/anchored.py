"""A recency-weighted time-of-week profile, anchored on the latest observation.

forecast(t) = profile(t) + level + (deviation_now - level) * 0.5 ** (age(t) / half_life)

- The profile weights each past week by `memory ** weeks_back`. `memory` is fitted for the group
  of series fitted together (a city's lots, its segments), on how well each memory's profile of
  earlier weeks foretold the latest two, every series' misses relative to its own typical miss:
  one series' single week is too little evidence, and a city whose demand moves week to week
  then leans on the recent weeks while a steady one averages many.
- `deviation_now` is the latest observation minus the profile at its time; `age(t)` is the time
  from that observation (not from the origin) to t, so the correction carries across gaps, nights
  and irregular sampling and decays in time.
- `level` is an exponentially weighted mean of recent deviations (in time; gaps just add no
  weight), so a level shift (a December rise, a new tenant) is followed within its half-life.
- The level's and the correction's half-lives are fitted per series by the in-sample error of
  forecasting deviations k steps ahead, which has a closed form per pair, so the grid is cheap.
The fitted correction half-life and the anchor (time and value) are kept as the model's state,
so a reader can re-anchor a stored forecast on a newer live value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np

from analytics.base import Matrix, SeriesModel
from analytics.ewm import ewm_sums
from analytics.panel import BoolArray, FloatArray, IntArray
from analytics.parallel import map_ordered
from analytics.profile import Seasons, fill_missing, later_by, smooth_circular, take_columns
from analytics.window import Window

# Weight of a week relative to the week after it; 0 keeps the latest week alone.
MEMORIES = np.array([0.0, 0.3, 0.55, 0.75, 0.9, 1.0])
# Half-lives of the correction, hours; infinity never decays.
DECAY_HOURS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 48.0, np.inf])
# Half-lives of the recent level, hours; 0 means no level term.
LEVEL_HOURS = np.array([0.0, 12.0, 36.0, 96.0, 240.0])
SMOOTH_SECONDS = 900
TUNE_WEEKS = 2
# The level and decay are tuned on at most this many recent slots (a week at 5 min).
DYNAMICS_SLOTS = 2_016
# The group's memory is chosen on at most this many of its series, evenly spread: one number
# for the group needs far fewer misses than 10,000 series give, and costs a full pass each.
MEMORY_ROWS = 512


class AnchoredProfile(SeriesModel):
    """Recency-weighted time-of-week profile plus a level and a decaying anchor correction."""

    name: ClassVar[str] = "anchored"
    pooled: ClassVar[bool] = True

    def history(self, seasons: Seasons) -> int:
        """Return the weeks the profile may use."""
        return seasons.week * self.weeks

    _memory: float | None = None

    def prepare(self, y: Matrix, seasons: Seasons, h: int) -> None:
        """Choose one week memory for the whole group of series, on every series' errors."""
        y = _sample_rows(y, MEMORY_ROWS)
        width = min(y.values.shape[1], self.history(seasons))
        end = y.values.shape[1]
        half = _half_width(seasons)

        def relative_errors(rows: IntArray | slice) -> FloatArray:
            """Return the rows' errors per memory, each row's relative to its typical one."""
            window = Window(y.values[rows, end - width :], seasons, h, y.slots(rows, end, width, h))
            errors = _Weeks(window, half).memory_errors()
            typical = errors.mean(axis=1)
            summed: FloatArray = (errors / np.where(typical > 0, typical, 1.0)[:, None]).sum(axis=0)
            return summed

        pooled = np.zeros(MEMORIES.size)
        # Added in the chunks' order, so the sum is the same on any number of workers.
        for part in map_ordered(relative_errors, y.chunks(self.chunk_rows), self.workers):
            pooled += part
        self._memory = float(MEMORIES[int(pooled.argmin())])

    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit level and decay per row; forecast h steps."""
        seasons, h = window.seasons, window.h
        step_hours = 24.0 / seasons.day
        weeks = _Weeks(window, _half_width(seasons))
        memory = 1.0 if self._memory is None else self._memory
        daily = window.ahead(seasons.day, _half_width(seasons))
        mean = np.broadcast_to(window.row_mean(), daily.shape)
        ahead = weeks.profile(memory, -1)[:, window.slots.ahead(h, seasons.week)]
        ahead = fill_missing(ahead, daily, mean)
        deviation = weeks.deviation(memory)
        level_alpha, phi = _tune_dynamics(deviation[:, -DYNAMICS_SLOTS:], step_hours, h)
        level = _level(deviation, level_alpha)
        last, gap = _last_finite(deviation)
        steps = gap[:, None] + np.arange(1, h + 1)[None, :]
        correction = (last - level)[:, None] * phi[:, None] ** steps
        window.state["half_life_s"] = _half_life_seconds(phi, step_hours)
        return ahead + level[:, None] + correction


class _Weeks:
    """A window's columns by week of age (0: the latest seven days) and slot of the week."""

    def __init__(self, window: Window, half: int) -> None:
        """Index the window's columns; `half` neighbouring slots each side pool a profile."""
        self.window = window
        self.period = window.seasons.week
        self.columns = window.slots.columns(window.width, self.period)
        self.age = (window.width - 1 - np.arange(window.width)) // self.period
        self.tuned_ages = [a for a in range(TUNE_WEEKS) if (self.age > a).any()]
        self.weeks = int(self.age.max(initial=0)) + 1
        # Slot sums of each week alone, (n, weeks, period): every weighted profile is a
        # weighted sum of these, so the columns are summed once per window.
        total, count = window.week_sums()
        # Pooling neighbouring slots is linear, so it is done once here, not per profile.
        self.total = smooth_circular(total, half)
        self.count = smooth_circular(count, half)

    def profile(self, memory: float, newer_than: int) -> FloatArray:
        """Return (n, period) profiles of the weeks older than `newer_than`, each weighted by
        memory ** (weeks between it and week `newer_than`, less one); NaN where a slot has none."""
        ages = np.arange(self.weeks)
        power = np.maximum(ages - newer_than - 1, 0).astype(np.float64)
        # Older weeks keep a token weight, so they fill in where the recent ones have a gap.
        weights = np.where(ages > newer_than, np.maximum(memory**power, 1e-3), 0.0)
        # One memory for all rows: the same weights for every row's weeks.
        total = np.matmul(weights, self.total)
        count = np.matmul(weights, self.count)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(total, count, out=total)
        np.putmask(total, count <= 1e-12, np.nan)
        profile: FloatArray = total
        return profile

    def memory_errors(self) -> FloatArray:
        """Return (n, memories): how far each memory's profiles of earlier weeks missed the
        tuned weeks (sum of absolute misses; 0 without tuned weeks)."""
        n = self.window.values.shape[0]
        if not self.tuned_ages:
            return np.zeros((n, MEMORIES.size))
        return np.stack([_abs_sum(self.deviation(float(memory))) for memory in MEMORIES], axis=1)

    def deviation(self, memory: float) -> FloatArray:
        """Return the tuned weeks' values minus the profile of the weeks before each (NaN where
        that profile has nothing), over the columns from the oldest tuned week on."""
        values = self.window.values
        first = int(np.flatnonzero(self.age == max(self.tuned_ages, default=0))[0])
        if not self.tuned_ages:
            return np.full((values.shape[0], values.shape[1] - first), np.nan)
        # The tuned weeks are consecutive and cover every column from `first` on.
        out = np.empty((values.shape[0], values.shape[1] - first))
        for a in self.tuned_ages:
            cols = np.flatnonzero(self.age == a)
            start, stop = int(cols[0]), int(cols[-1]) + 1
            guess = take_columns(self.profile(memory, a), self.columns[start:stop])
            np.subtract(values[:, start:stop], guess, out=out[:, start - first : stop - first])
        return out


def _sample_rows(y: Matrix, most: int) -> Matrix:
    """Return at most `most` of the rows of `y`, evenly spread (all of them when fewer)."""
    n = y.values.shape[0]
    if n <= most:
        return y
    rows = np.linspace(0, n - 1, most).round().astype(np.int64)
    return replace(y, values=y.values[rows], capacity=y.capacity[rows], end=y.end[rows])


def _half_width(seasons: Seasons) -> int:
    """Return the neighbouring slots each side that a profile pools."""
    return int(SMOOTH_SECONDS // (86_400 // seasons.day))


def _abs_sum(x: FloatArray) -> FloatArray:
    """Return the sum of absolute finite values per row."""
    total: FloatArray = np.where(np.isfinite(x), np.abs(x), 0.0).sum(axis=1)
    return total


def _level(deviation: FloatArray, alpha: FloatArray) -> FloatArray:
    """Return per row the latest recent level with its own alpha (0: no level)."""
    n = deviation.shape[0]
    out = np.zeros(n)
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    width = deviation.shape[1]
    for value in np.unique(alpha):
        if value <= 0:
            continue
        rows = alpha == value
        # Only the last column of the moving sums is needed: a dot product with its weights
        # (row by row, so a row's sum does not depend on the rows chunked with it).
        weights = value * (1.0 - value) ** np.arange(width - 1, -1, -1, dtype=np.float64)
        num = np.einsum("ij,j->i", filled[rows], weights)
        den = np.einsum("ij,j->i", finite[rows], weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[rows] = np.where(den > 1e-9, num / den, 0.0)
    return out


def _horizons(h: int, width: int) -> list[int]:
    """Return the steps ahead the dynamics are tuned on."""
    wanted = {1, 2, 4, max(1, h // 2), h}
    return sorted(k for k in wanted if k < width // 2) or [1]


def _tune_dynamics(
    deviation: FloatArray, step_hours: float, h: int
) -> tuple[FloatArray, FloatArray]:
    """Return per row the level alpha (0: none) and per-step decay with the least error."""
    phis = 0.5 ** (step_hours / DECAY_HOURS)
    alphas = _level_alphas(step_hours)
    error = _dynamics_errors(deviation, alphas, phis, _horizons(h, deviation.shape[1]))
    n = deviation.shape[0]
    best = error.reshape(n, -1).argmin(axis=1)
    a_best, p_best = np.divmod(best, phis.size)
    return alphas[a_best], phis[p_best]


def _level_alphas(step_hours: float) -> FloatArray:
    """Return the smoothing weight of each level half-life at this step (0: no level)."""
    hours = np.maximum(LEVEL_HOURS, 1e-9)
    alphas: FloatArray = np.where(LEVEL_HOURS > 0, 1.0 - 0.5 ** (step_hours / hours), 0.0)
    return alphas


def _dynamics_errors(
    deviation: FloatArray, alphas: FloatArray, phis: FloatArray, horizons: list[int]
) -> FloatArray:
    """Return (n, alphas, phis): the squared error, summed over the horizons, of forecasting
    the deviation k steps ahead with each level and decay.

    For a level L and decay phi, the error of forecasting d[t+k] from d[t] is
    sum over pairs (both observed) of ((d[t+k] - L[t]) - phi^k (d[t] - L[t]))^2; it expands into
    sums of products that are computed once per (level, k), then evaluated for every phi. With
    f the observed mask and x the deviation with gaps as 0, a pair's mask f[t] f[t+k] folds into
    the factors (x[t+k] f[t] = x[t+k] f[t] f[t+k]), so every sum is a product of the shifted
    series, x[t+k] and f[t+k], with one column per (level, factor) at t.
    """
    n, width = deviation.shape
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    count = len(horizons)
    # The series k steps later, one row per k (0 past the end): (n, k, width) each.
    later_value = later_by(filled, horizons)
    later_seen = later_by(finite, horizons)
    levels = [a for a, alpha in enumerate(alphas) if alpha > 0]
    # Factors at t: per level f L, then x (for sum x[t+k] x[t]); and x L, f L^2 per level,
    # then x^2 (for sum f[t+k] x[t]^2). Alpha 0 has no level: its sums are 0.
    size = len(levels)
    with_value = np.empty((n, size + 1, width))
    with_seen = np.empty((n, 2 * size + 1, width))
    level = _smoothed_levels(filled, finite, alphas[levels])
    np.multiply(level, finite[:, None], out=with_value[:, :size])
    np.multiply(level, filled[:, None], out=with_seen[:, :size])
    np.multiply(level, with_value[:, :size], out=with_seen[:, size : 2 * size])
    with_value[:, size] = filled
    np.multiply(filled, filled, out=with_seen[:, 2 * size])
    # Factors lie along rows so each is written in one run; the products read them transposed.
    by_value = np.matmul(later_value, with_value.transpose(0, 2, 1))
    by_seen = np.matmul(later_seen, with_seen.transpose(0, 2, 1))
    # sum f[t] x[t+k]^2: the later value squared where the earlier one is seen.
    dd_later = np.einsum("nkt,nkt,nt->nk", later_value, later_value, finite)
    dd_cross, dd_now = by_value[:, :, size], by_seen[:, :, 2 * size]
    error = np.zeros((n, alphas.size, phis.size))
    for a in range(alphas.size):
        if a in levels:
            column = levels.index(a)
            later_level = by_value[:, :, column]
            now_level = by_seen[:, :, column]
            level_level = by_seen[:, :, size + column]
        else:
            later_level = now_level = level_level = np.zeros((n, count))
        for i, k in enumerate(horizons):
            ee = dd_later[:, i] - 2 * later_level[:, i] + level_level[:, i]
            eg = dd_cross[:, i] - later_level[:, i] - now_level[:, i] + level_level[:, i]
            gg = dd_now[:, i] - 2 * now_level[:, i] + level_level[:, i]
            damp = (phis**k)[None, :]
            error[:, a, :] += ee[:, None] - 2 * damp * eg[:, None] + damp**2 * gg[:, None]
    return error


def _smoothed_levels(filled: FloatArray, finite: BoolArray, alphas: FloatArray) -> FloatArray:
    """Return (n, alphas, width): the exponentially weighted mean of observed deviations at
    every column for each alpha > 0 (0 before any observation)."""
    n = filled.shape[0]
    # Values and observed flags as rows of one batch: their moving sums for every alpha at once.
    sums = ewm_sums(np.concatenate([filled, finite.astype(np.float64)]), alphas)
    num, den = sums[:n], sums[n:]
    with np.errstate(invalid="ignore", divide="ignore"):
        level: FloatArray = np.where(den > 1e-9, num / den, 0.0)
    return level


def _last_finite(x: FloatArray) -> tuple[FloatArray, IntArray]:
    """Return each row's last finite value (0 if none) and how many columns before the end."""
    finite = np.isfinite(x)
    width = x.shape[1]
    back = np.argmax(finite[:, ::-1], axis=1)
    value = x[np.arange(x.shape[0]), width - 1 - back]
    has = finite.any(axis=1)
    return np.where(has, value, 0.0), np.where(has, back, 0).astype(np.int64)


def _half_life_seconds(phi: FloatArray, step_hours: float) -> FloatArray:
    """Return the correction's half-life in seconds (infinity when it never decays)."""
    with np.errstate(divide="ignore"):
        steps = np.where(phi < 1.0, np.log(0.5) / np.log(np.minimum(phi, 1 - 1e-12)), np.inf)
    return steps * step_hours * 3600.0
