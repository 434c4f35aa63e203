"""Ridge regression of the deviation from the time-of-week profile on recent deviations.

Target: y_t - weekly_t. Features: the daily-minus-weekly profile (lets a series lean on the
smoother daily profile), the last three deviations, the deviation one day earlier, a slow
exponential average of deviations, and an intercept. Shrinking towards zero means shrinking
towards the time-of-week profile. Forecasts run the fitted equation forward step by step.
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
    first = max(total - width, LAGS, day if total > day else 0)
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
    """Return the forecast deviations (n, h), feeding each step back as a lag."""
    n, h = blend.shape
    total = known.shape[1]
    alpha = 1.0 - 0.5 ** (24.0 / day / SLOW_HALF_LIFE_HOURS)
    lags = [known[:, total - lag] for lag in range(1, LAGS + 1)]
    history = np.concatenate([known[:, max(0, total - day) :], np.zeros((n, h))], axis=1)
    offset = min(total, day)
    coef = [np.ascontiguousarray(beta[:, k]) for k in range(N_FEATURES)]
    # Terms that do not feed back are computed for all steps at once, steps along rows; the
    # value a day back is data (or 0 before the data) for the first day of steps.
    profile_term = (beta[:, :1] * blend).T.copy()
    day_term = np.empty((h, n))
    known_steps = min(h, day)
    back = offset + np.arange(known_steps) - day
    day_term[:known_steps][back >= 0] = coef[LAGS + 1] * history[:, back[back >= 0]].T
    day_term[:known_steps][back < 0] = coef[LAGS + 1] * 0.0
    slow = slow_last.copy()
    path = np.empty((n, h))
    for step in range(h):
        if step >= known_steps:
            day_term[step] = coef[LAGS + 1] * history[:, offset + step - day]
        lag_sum = coef[1] * lags[0]
        for lag in range(2, LAGS + 1):
            lag_sum = lag_sum + coef[lag] * lags[lag - 1]
        value = (
            profile_term[step] + lag_sum + day_term[step] + coef[LAGS + 2] * slow + coef[LAGS + 3]
        )
        path[:, step] = value
        history[:, offset + step] = value
        slow = alpha * value + (1.0 - alpha) * slow
        lags = [value, *lags[:-1]]
    return path
