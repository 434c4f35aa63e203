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
from scipy.signal import lfilter

from analytics.base import Matrix, SeriesModel
from analytics.panel import BoolArray, FloatArray, IntArray
from analytics.profile import Seasons, fill_missing, slot_sums_at
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
        pooled = np.zeros(MEMORIES.size)
        for rows in y.chunks(self.chunk_rows):
            window = Window(y.values[rows, end - width :], seasons, h, y.slots(rows, end, width, h))
            errors = _Weeks(window, half).memory_errors()
            typical = errors.mean(axis=1)
            pooled += (errors / np.where(typical > 0, typical, 1.0)[:, None]).sum(axis=0)
        self._memory = float(MEMORIES[int(pooled.argmin())])

    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit level and decay per row; forecast h steps."""
        seasons, h = window.seasons, window.h
        step_hours = 24.0 / seasons.day
        weeks = _Weeks(window, _half_width(seasons))
        n = window.values.shape[0]
        memory = np.full(n, 1.0 if self._memory is None else self._memory)
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
        total, count = slot_sums_at(
            window.observed, self.age * self.period + self.columns, self.weeks * self.period
        )
        n = window.values.shape[0]
        # Pooling neighbouring slots is linear, so it is done once here, not per profile.
        self.total = _circular_sum(total.reshape(n, self.weeks, self.period), half)
        self.count = _circular_sum(count.reshape(n, self.weeks, self.period), half)

    def profile(self, memory: FloatArray, newer_than: int) -> FloatArray:
        """Return (n, period) profiles of the weeks older than `newer_than`, each weighted by
        memory ** (weeks between it and week `newer_than`, less one); NaN where a slot has none."""
        ages = np.arange(self.weeks)
        power = np.maximum(ages - newer_than - 1, 0).astype(np.float64)
        # Older weeks keep a token weight, so they fill in where the recent ones have a gap.
        weights = np.maximum(memory[:, None] ** power[None, :], 1e-3)
        weights[:, ages <= newer_than] = 0.0
        total = np.matmul(weights[:, None, :], self.total)[:, 0]
        count = np.matmul(weights[:, None, :], self.count)[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 1e-12, total / count, np.nan)

    def memory_errors(self) -> FloatArray:
        """Return (n, memories): how far each memory's profiles of earlier weeks missed the
        tuned weeks (sum of absolute misses; 0 without tuned weeks)."""
        n = self.window.values.shape[0]
        if not self.tuned_ages:
            return np.zeros((n, MEMORIES.size))
        return np.stack(
            [_abs_sum(self.deviation(np.full(n, memory))) for memory in MEMORIES], axis=1
        )

    def deviation(self, memory: FloatArray) -> FloatArray:
        """Return the tuned weeks' values minus the profile of the weeks before each (NaN where
        that profile has nothing), over the columns from the oldest tuned week on."""
        values = self.window.values
        first = int(np.flatnonzero(self.age == max(self.tuned_ages, default=0))[0])
        out = np.full((values.shape[0], values.shape[1] - first), np.nan)
        for a in self.tuned_ages:
            cols = np.flatnonzero(self.age == a)
            guess = self.profile(memory, a)[:, self.columns[cols]]
            out[:, cols - first] = values[:, cols] - guess
        return out


def _sample_rows(y: Matrix, most: int) -> Matrix:
    """Return at most `most` of the rows of `y`, evenly spread (all of them when fewer)."""
    n = y.values.shape[0]
    if n <= most:
        return y
    rows = np.linspace(0, n - 1, most).round().astype(np.int64)
    return replace(y, values=y.values[rows], capacity=y.capacity[rows], end=y.end[rows])


def _circular_sum(x: FloatArray, half: int) -> FloatArray:
    """Return the circular moving sum over +-half slots along the last axis, by cumulative sums
    (the work does not grow with `half`)."""
    if half <= 0:
        return x
    extended = np.concatenate([x[..., -half:], x, x[..., :half]], axis=-1)
    cumulative = np.cumsum(extended, axis=-1)
    zero = np.zeros((*x.shape[:-1], 1))
    cumulative = np.concatenate([zero, cumulative], axis=-1)
    out: FloatArray = cumulative[..., 2 * half + 1 :] - cumulative[..., : -2 * half - 1]
    return out


def _half_width(seasons: Seasons) -> int:
    """Return the neighbouring slots each side that a profile pools."""
    return int(SMOOTH_SECONDS // (86_400 // seasons.day))


def _abs_sum(x: FloatArray) -> FloatArray:
    """Return the sum of absolute finite values per row."""
    total: FloatArray = np.where(np.isfinite(x), np.abs(x), 0.0).sum(axis=1)
    return total


def _ewm(x: FloatArray, alpha: float) -> FloatArray:
    """Return the exponentially weighted moving sum of x along the last axis."""
    return np.asarray(lfilter([alpha], [1.0, alpha - 1.0], x, axis=1))


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
    """Return per row the level alpha (0: none) and per-step decay with the least error.

    For a level L and decay phi, the error of forecasting d[t+k] from d[t] is
    sum over pairs (both observed) of ((d[t+k] - L[t]) - phi^k (d[t] - L[t]))^2; it expands into
    sums of products that are computed once per (level, k), then evaluated for every phi.
    """
    n, width = deviation.shape
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    phis = 0.5 ** (step_hours / DECAY_HOURS)
    alphas = np.where(
        LEVEL_HOURS > 0, 1.0 - 0.5 ** (step_hours / np.maximum(LEVEL_HOURS, 1e-9)), 0.0
    )
    horizons = _horizons(h, width)
    # Per k, the pair weights on the earlier column of each pair, padded to the full width,
    # stacked so each level costs two batched products instead of three passes per k.
    paired = np.zeros((n, 3 * len(horizons), width))
    fixed = []
    for i, k in enumerate(horizons):
        both = (finite[:, :-k] & finite[:, k:]).astype(np.float64)
        later, now = both * filled[:, k:], both * filled[:, :-k]
        paired[:, i, : width - k] = later
        paired[:, len(horizons) + i, : width - k] = now
        paired[:, 2 * len(horizons) + i, : width - k] = both
        fixed.append((
            np.einsum("ij,ij->i", later, filled[:, k:]),
            np.einsum("ij,ij->i", later, filled[:, :-k]),
            np.einsum("ij,ij->i", now, filled[:, :-k]),
        ))  # fmt: skip
    count = len(horizons)
    # Every level's series side by side, (n, width, levels): one product per chunk reads the
    # pair weights once for all levels (alpha 0 has no level: its column stays 0).
    levels = np.zeros((n, width, alphas.size))
    for a, alpha in enumerate(alphas):
        if alpha > 0:
            levels[:, :, a] = _smoothed_level(filled, finite, float(alpha))
    all_level = np.matmul(paired[:, : 2 * count], levels)
    all_square = np.matmul(paired[:, 2 * count :], levels * levels)
    error = np.zeros((n, alphas.size, phis.size))
    for a in range(alphas.size):
        with_level, with_square = all_level[:, :, a], all_square[:, :, a]
        for i, k in enumerate(horizons):
            dd_later, dd_cross, dd_now = fixed[i]
            later_level, now_level = with_level[:, i], with_level[:, count + i]
            level_level = with_square[:, i]
            ee = dd_later - 2 * later_level + level_level
            eg = dd_cross - later_level - now_level + level_level
            gg = dd_now - 2 * now_level + level_level
            damp = (phis**k)[None, :]
            error[:, a, :] += ee[:, None] - 2 * damp * eg[:, None] + damp**2 * gg[:, None]
    best = error.reshape(n, -1).argmin(axis=1)
    a_best, p_best = np.divmod(best, phis.size)
    return alphas[a_best], phis[p_best]


def _smoothed_level(filled: FloatArray, finite: BoolArray, alpha: float) -> FloatArray:
    """Return the exponentially weighted mean of observed deviations at every column (0 for
    alpha 0 or before any observation)."""
    if alpha <= 0:
        return np.zeros_like(filled)
    num = _ewm(filled, alpha)
    den = _ewm(finite.astype(np.float64), alpha)
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
