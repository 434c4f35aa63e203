"""A recency-weighted time-of-week profile, anchored on the latest observation.

forecast(t) = profile(t) + level + (deviation_now - level) * 0.5 ** (age(t) / half_life)

- The profile weights each past week by `memory ** weeks_back`, with `memory` chosen per series
  by how well the earlier weeks foretold the latest one, so a series whose demand moves week to
  week leans on the recent weeks and a steady one averages many.
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

from typing import ClassVar

import numpy as np
from scipy.signal import lfilter

from analytics.base import SeriesModel
from analytics.panel import FloatArray, IntArray
from analytics.profile import Observed, Seasons, fill_missing, slot_sums_at, smooth_circular
from analytics.window import Window

# Weight of a week relative to the week after it; 0 keeps the latest week alone.
MEMORIES = np.array([0.0, 0.3, 0.55, 0.75, 0.9, 1.0])
# Half-lives of the correction, hours; infinity never decays.
DECAY_HOURS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 48.0, np.inf])
# Half-lives of the recent level, hours; 0 means no level term.
LEVEL_HOURS = np.array([0.0, 12.0, 36.0, 96.0, 240.0])
SMOOTH_SECONDS = 900
TUNE_WEEKS = 2


class AnchoredProfile(SeriesModel):
    """Recency-weighted time-of-week profile plus a level and a decaying anchor correction."""

    name: ClassVar[str] = "anchored"

    def history(self, seasons: Seasons) -> int:
        """Return the weeks the profile may use."""
        return seasons.week * self.weeks

    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit profile memory, level and decay per row; forecast h steps."""
        seasons, h = window.seasons, window.h
        step_hours = 24.0 / seasons.day
        half = int(SMOOTH_SECONDS // (86_400 // seasons.day))
        weeks = _Weeks(window, half)
        memory = weeks.tune_memory()
        daily = window.ahead(seasons.day, half)
        mean = np.broadcast_to(window.row_mean(), daily.shape)
        ahead = weeks.profile(memory, -1)[:, window.slots.ahead(h, seasons.week)]
        ahead = fill_missing(ahead, daily, mean)
        deviation = weeks.deviation(memory)
        level_alpha, phi = _tune_dynamics(deviation, step_hours, h)
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
        self.half = half
        self.columns = window.slots.columns(window.width, self.period)
        self.age = (window.width - 1 - np.arange(window.width)) // self.period
        self.tuned_ages = [a for a in range(TUNE_WEEKS) if (self.age > a).any()]

    def profile(self, memory: FloatArray, newer_than: int) -> FloatArray:
        """Return (n, period) profiles of the weeks older than `newer_than`, each weighted by
        memory ** (weeks between it and week `newer_than`, less one); NaN where a slot has none."""
        older = self.age > newer_than
        power = np.maximum(self.age - newer_than - 1, 0).astype(np.float64)
        weights = np.where(older[None, :], memory[:, None] ** power[None, :], 0.0)
        observed = self.window.observed
        w_finite = weights * observed.finite
        total, count = slot_sums_at(
            Observed(w_finite, w_finite * observed.filled),
            self.columns,
            self.period,
        )
        total, count = smooth_circular(total, self.half), smooth_circular(count, self.half)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 1e-12, total / count, np.nan)

    def tune_memory(self) -> FloatArray:
        """Return per row the memory whose profiles of earlier weeks best foretold the latest."""
        n = self.window.values.shape[0]
        if not self.tuned_ages:
            return np.ones(n)
        errors = np.stack(
            [_abs_sum(self.deviation(np.full(n, memory))) for memory in MEMORIES], axis=1
        )
        return np.asarray(MEMORIES[errors.argmin(axis=1)], dtype=np.float64)

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
    for value in np.unique(alpha):
        if value <= 0:
            continue
        rows = alpha == value
        num = _ewm(filled[rows], float(value))[:, -1]
        den = _ewm(finite[rows].astype(np.float64), float(value))[:, -1]
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
    n, width = deviation.shape
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    phis = 0.5 ** (step_hours / DECAY_HOURS)
    alphas = np.where(
        LEVEL_HOURS > 0, 1.0 - 0.5 ** (step_hours / np.maximum(LEVEL_HOURS, 1e-9)), 0.0
    )
    error = np.zeros((n, alphas.size, phis.size))
    for a, alpha in enumerate(alphas):
        if alpha > 0:
            num = _ewm(filled, float(alpha))
            den = _ewm(finite.astype(np.float64), float(alpha))
            with np.errstate(invalid="ignore", divide="ignore"):
                level = np.where(den > 1e-9, num / den, 0.0)
        else:
            level = np.zeros_like(filled)
        for k in _horizons(h, width):
            pair = finite[:, :-k] & finite[:, k:]
            e = np.where(pair, filled[:, k:] - level[:, :-k], 0.0)
            g = np.where(pair, filled[:, :-k] - level[:, :-k], 0.0)
            ee = np.einsum("ij,ij->i", e, e)
            eg = np.einsum("ij,ij->i", e, g)
            gg = np.einsum("ij,ij->i", g, g)
            damp = (phis**k)[None, :]
            error[:, a, :] += ee[:, None] - 2 * damp * eg[:, None] + damp**2 * gg[:, None]
    best = error.reshape(n, -1).argmin(axis=1)
    a_best, p_best = np.divmod(best, phis.size)
    return alphas[a_best], phis[p_best]


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
