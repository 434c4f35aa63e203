"""Ridge regression of the deviation from the time-of-week profile on recent deviations.

Target: y_t - weekly_t. Features: the daily-minus-weekly profile (lets a series lean on the
smoother daily profile), the last three deviations, the deviation one day earlier, a slow
exponential average of deviations, and an intercept. Shrinking towards zero means shrinking
towards the time-of-week profile. Forecasts run the fitted equation forward step by step
(computed a block of steps at a time, `_run`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from analytics.base import SeriesModel
from analytics.ewm import ewm_sums
from analytics.panel import FloatArray
from analytics.profile import Seasons, smoothing_half_width
from analytics.window import Window

LAGS = 3
FIT_WEEKS = 2
RIDGE = 0.05
SLOW_HALF_LIFE_HOURS = 3.0
SMOOTH_SECONDS = 900
N_FEATURES = LAGS + 4
# The forecast's state: the last LAGS values and the slow average.
STATE = LAGS + 1
# Forecast steps run in blocks of this many (at most a day, so a day back is always known).
RUN_BLOCK = 16


class ProfileRidge(SeriesModel):
    """Time-of-week profile corrected by a ridge regression on recent deviations."""

    name: ClassVar[str] = "profile_ridge"

    def history(self, seasons: Seasons) -> int:
        """Return the weeks the profile is averaged over."""
        return seasons.week * self.weeks

    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit the regression per row and run it forward h steps."""
        seasons = window.seasons
        fit_width = min(window.width, seasons.week * FIT_WEEKS)
        span = min(window.width, fit_width + seasons.day)
        base = window.baseline(smoothing_half_width(seasons, SMOOTH_SECONDS), span)
        deviation = base.deviation
        alpha = 1.0 - 0.5 ** (24.0 / seasons.day / SLOW_HALF_LIFE_HOURS)
        known = np.where(np.isnan(deviation), 0.0, deviation)
        slow = ewm_sums(known, np.array([alpha]))[:, 0]
        beta = _fit(deviation, base.daily - base.weekly, slow, seasons.day, fit_width)
        blend = base.daily_ahead - base.weekly_ahead
        path = _run(beta, known, slow[:, -1], blend, seasons.day)
        return base.weekly_ahead + path


def _design(
    deviation: FloatArray, blend: FloatArray, slow: FloatArray, day: int, width: int
) -> tuple[FloatArray, FloatArray]:
    """Return the features (n, k, t) and targets (n, t) of the last `width` columns where the
    target and every feature are known, 0 elsewhere (so those columns add nothing)."""
    n, total = deviation.shape
    # A window shorter than the lags (daily data, a few days) has no column to fit on.
    first = min(total, max(total - width, LAGS, day if total > day else 0))
    count = total - first
    known = np.isfinite(deviation)
    # The lag features are the deviation shifted: its mask, shifted alike, says where they are
    # known, instead of testing every feature's values.
    usable = known[:, first:] & np.isfinite(blend[:, first:])
    for lag in range(1, LAGS + 1):
        usable &= known[:, first - lag : total - lag]
    if total > day:
        usable &= known[:, first - day : total - day]
    usable &= np.isfinite(slow[:, first - 1 : total - 1])
    x = np.empty((n, N_FEATURES, count))
    x[:, 0] = blend[:, first:]
    for lag in range(1, LAGS + 1):
        x[:, lag] = deviation[:, first - lag : total - lag]
    x[:, LAGS + 1] = deviation[:, first - day : total - day] if total > day else 0.0
    x[:, LAGS + 2] = slow[:, first - 1 : total - 1]
    x[:, LAGS + 3] = 1.0
    np.copyto(x, 0.0, where=~usable[:, None, :])
    target = np.where(usable, deviation[:, first:], 0.0)
    return x, target


def _fit(
    deviation: FloatArray, blend: FloatArray, slow: FloatArray, day: int, width: int
) -> FloatArray:
    """Return ridge coefficients (n, k) fitted on columns where features and target are known."""
    x, target = _design(deviation, blend, slow, day, width)
    gram = np.matmul(x, x.transpose(0, 2, 1))
    moment = np.matmul(x, target[:, :, None])[:, :, 0]
    diagonal = np.einsum("nkk->nk", gram)
    penalty = RIDGE * diagonal[:, :-1].mean(axis=1) + 1e-9
    regularised = gram + penalty[:, None, None] * np.eye(N_FEATURES)
    regularised[:, -1, -1] = gram[:, -1, -1] + 1e-9
    beta = np.linalg.solve(regularised, moment[:, :, None])[:, :, 0]
    # Series with too few usable samples keep the profile alone; the intercept's diagonal
    # counts them.
    beta[gram[:, -1, -1] < 4 * N_FEATURES] = 0.0
    return beta


def _run(
    beta: FloatArray, known: FloatArray, slow_last: FloatArray, blend: FloatArray, day: int
) -> FloatArray:
    """Return the forecast deviations (n, h), feeding each step back as a lag.

    The equation is linear in its state (the last three values and the slow average), so a
    block of steps is the state's powered transition plus the steps' drives through the
    equation's impulse response: a few batched products per block instead of a dozen small
    array operations per step.
    """
    n, h = blend.shape
    total = known.shape[1]
    alpha = 1.0 - 0.5 ** (24.0 / day / SLOW_HALF_LIFE_HOURS)
    history = known[:, max(0, total - day) :]
    known_steps = min(h, day)
    back = min(total, day) + np.arange(known_steps) - day
    seen = back >= 0
    # What drives each step without feeding back: the profile blend, the intercept and, in the
    # first day of steps, the value a day back (data, or 0 before the data).
    drive = beta[:, :1] * blend + beta[:, LAGS + 3 :]
    drive[:, :known_steps][:, seen] += beta[:, LAGS + 1 : LAGS + 2] * history[:, back[seen]]
    move, gain = _transition(beta, alpha)
    size = max(1, min(RUN_BLOCK, day, h))
    powers = np.empty((size, n, STATE, STATE))  # powers[k] = move ** (k + 1)
    powers[0] = move
    for k in range(1, size):
        powers[k] = np.matmul(move, powers[k - 1])
    # Step k + 1 of a block from the state before it, and from each step's drive.
    from_state = np.ascontiguousarray(powers[:, :, 0, :].transpose(1, 0, 2))
    impulse = np.ones((n, size))
    impulse[:, 1:] = np.einsum("knj,j->nk", powers[: size - 1, :, 0, :], gain)
    lag = np.arange(size)[:, None] - np.arange(size)[None, :]
    from_drive = np.where(lag >= 0, impulse[:, np.maximum(lag, 0)], 0.0)
    # The state after a whole block, from the state before it and from each step's drive.
    carried = np.empty((n, STATE, size))
    carried[:, :, size - 1] = gain
    if size > 1:
        carried[:, :, : size - 1] = np.einsum("knij,j->nik", powers[size - 2 :: -1], gain)
    state = np.stack([*(known[:, total - lag] for lag in range(1, LAGS + 1)), slow_last], axis=1)
    path = np.empty((n, h))
    for start in range(0, h, size):
        stop = min(h, start + size)
        block = drive[:, start:stop, None]
        if stop > known_steps:
            # Beyond a day the value a day back is the forecast's own, from an earlier block.
            late = np.arange(max(start, known_steps), stop)
            block = block.copy()
            block[:, late - start, 0] += beta[:, LAGS + 1 : LAGS + 2] * path[:, late - day]
        width = stop - start
        steps = np.matmul(from_state[:, :width], state[:, :, None])
        steps += np.matmul(from_drive[:, :width, :width], block)
        path[:, start:stop] = steps[:, :, 0]
        if width == size:
            state = (np.matmul(powers[-1], state[:, :, None]) + np.matmul(carried, block))[..., 0]
    return path


def _transition(beta: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    """Return the equation as a state transition, (n, STATE, STATE), and how a step's drive
    enters the state, (STATE,): the state is the last three values and the slow average."""
    n = beta.shape[0]
    fed = np.concatenate([beta[:, 1 : LAGS + 1], beta[:, LAGS + 2 : LAGS + 3]], axis=1)
    move = np.zeros((n, STATE, STATE))
    move[:, 0] = fed
    for lag in range(1, LAGS):
        move[:, lag, lag - 1] = 1.0
    move[:, LAGS] = alpha * fed
    move[:, LAGS, LAGS] += 1.0 - alpha
    gain = np.zeros(STATE)
    gain[0], gain[LAGS] = 1.0, alpha
    return move, gain
