"""Time-of-week profile with a damped level correction fitted by exponential smoothing.

The deviation of each reading from its (leave-one-out) time-of-week profile is smoothed into a
level; the forecast is the profile plus that level, damped towards the profile with horizon.
Smoothing and damping are chosen per series from a small grid by the in-sample error at a few
horizons, which has a closed form per damping value, so the grid costs one filter per alpha.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from analytics.base import SeriesModel
from analytics.ewm import ewm_sums
from analytics.panel import FloatArray
from analytics.profile import Seasons, later_by, smoothing_half_width
from analytics.window import Window

ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75])
# Half-lives of the level correction, in hours; infinity keeps the level undamped.
HALF_LIVES = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, np.inf])
# Slots the smoothing and damping are tuned on (capped by the history): about a week at 5 min.
TUNE_SLOTS = 2_000
SMOOTH_SECONDS = 900


class ProfileSmoothing(SeriesModel):
    """Time-of-week profile plus an exponentially smoothed, damped level correction."""

    name: ClassVar[str] = "profile_es"

    def history(self, seasons: Seasons) -> int:
        """Return the weeks the profile is averaged over."""
        return seasons.week * self.weeks

    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit profile, smoothing and damping per row; forecast h steps."""
        seasons, h = window.seasons, window.h
        tune = min(window.width, max(seasons.week, TUNE_SLOTS))
        base = window.baseline(smoothing_half_width(seasons, SMOOTH_SECONDS), tune)
        deviation = base.deviation
        step_hours = 24.0 / seasons.day
        phis = 0.5 ** (step_hours / HALF_LIVES)
        level, phi = _tune(deviation, phis, _horizons(h, tune))
        steps = np.arange(1, h + 1)
        return base.weekly_ahead + phi[:, None] ** steps[None, :] * level[:, None]


def _horizons(h: int, width: int) -> list[int]:
    """Return the horizons the tuning error is summed over."""
    wanted = {1, max(1, h // 4), h}
    return sorted(j for j in wanted if j < width // 2) or [1]


def _tune(
    deviation: FloatArray, phis: FloatArray, horizons: list[int]
) -> tuple[FloatArray, FloatArray]:
    """Return per row the final level and damping of the best (alpha, phi) pair."""
    n = deviation.shape[0]
    finite = ~np.isnan(deviation)
    # A gap counts as no deviation, so the level decays back to the profile across it.
    filled = np.where(finite, deviation, 0.0)
    levels = ewm_sums(filled, ALPHAS)
    # The deviation j steps later, and whether it is known, one row per horizon (0 past the
    # end): each horizon's sums for every alpha are then one product.
    later = later_by(filled, horizons)
    known = later_by(finite, horizons)
    # `filled` is 0 where the future is unknown, so the cross term needs no mask.
    cross = np.matmul(later, levels.transpose(0, 2, 1))
    power = np.matmul(known, (levels * levels).transpose(0, 2, 1))
    error = np.zeros((n, ALPHAS.size, phis.size))
    for i, j in enumerate(horizons):
        damp = (phis**j)[None, None, :]
        error += damp**2 * power[:, i, :, None] - 2 * damp * cross[:, i, :, None]
    best = error.reshape(n, -1).argmin(axis=1)
    a_best, p_best = np.divmod(best, phis.size)
    return levels[np.arange(n), a_best, -1], phis[p_best]
