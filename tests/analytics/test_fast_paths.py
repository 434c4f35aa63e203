"""The fast paths of the models against the plain computations they replace.

Each fast path (blocked moving sums, copied runs of slots, per-week sums folded to a day, the
expanded tuning errors) must give what the direct computation gives, to rounding, wherever the
data put it: gaps, widths that are not a whole number of blocks or weeks, clock changes.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy.signal import lfilter

from analytics.anchored import _dynamics_errors, _horizons, _level_alphas, _smoothed_levels
from analytics.ewm import BLOCK, ewm_sums
from analytics.localtime import LocalSlots
from analytics.profile import (
    Observed,
    Seasons,
    slot_sums,
    slot_sums_at,
    smooth_circular,
    take_columns,
)
from analytics.regression import LAGS, N_FEATURES, SLOW_HALF_LIFE_HOURS, _run
from analytics.window import Window
from tests.analytics.synthetic import seasonal

ALPHAS = np.array([0.0005, 0.02, 0.1, 0.5, 0.75, 1.0])


def recursive(x: np.ndarray, alpha: float) -> np.ndarray:
    """Return the moving sums by the recursion itself: y[t] = alpha x[t] + (1 - alpha) y[t-1]."""
    return np.asarray(lfilter([alpha], [1.0, alpha - 1.0], x, axis=1))


@pytest.mark.parametrize("width", [1, BLOCK - 1, BLOCK, 3 * BLOCK + 5, 2_016, 40_000])
def test_moving_sums_equal_the_recursion(width: int) -> None:
    rng = np.random.default_rng(width)
    x = rng.normal(0, 50, (5, width))
    x[rng.random(x.shape) < 0.2] = 0.0
    sums = ewm_sums(x, ALPHAS)
    assert sums.shape == (5, ALPHAS.size, width)
    for a, alpha in enumerate(ALPHAS):
        expected = recursive(x, float(alpha))
        np.testing.assert_allclose(sums[:, a], expected, rtol=1e-12, atol=1e-10)


def test_moving_sums_of_a_row_do_not_depend_on_the_rows_beside_it() -> None:
    x = np.random.default_rng(1).normal(size=(9, 40_000))
    together = ewm_sums(x, ALPHAS)
    apart = np.concatenate(
        [ewm_sums(x[:1], ALPHAS), ewm_sums(x[1:4], ALPHAS), ewm_sums(x[4:], ALPHAS)]
    )
    np.testing.assert_array_equal(together, apart)


def test_smoothed_levels_are_weighted_means_of_what_was_observed() -> None:
    rng = np.random.default_rng(2)
    deviation = rng.normal(0, 5, (4, 300))
    deviation[rng.random(deviation.shape) < 0.3] = np.nan
    deviation[1, :50] = np.nan  # nothing observed yet: level 0
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    alphas = np.array([0.01, 0.3])
    levels = _smoothed_levels(filled, finite, alphas)
    for a, alpha in enumerate(alphas):
        num = recursive(filled, float(alpha))
        den = recursive(finite.astype(float), float(alpha))
        expected = np.where(den > 1e-9, num / np.where(den > 1e-9, den, 1.0), 0.0)
        np.testing.assert_allclose(levels[:, a], expected, rtol=1e-11, atol=1e-12)
    assert (levels[1, :, :50] == 0.0).all()


def test_tuning_errors_equal_the_errors_of_every_pair() -> None:
    """The expanded sums give, for every level and decay, the squared error summed over the
    pairs of observed deviations k steps apart."""
    rng = np.random.default_rng(3)
    deviation = np.cumsum(rng.normal(0, 1, (3, 400)), axis=1)
    deviation[rng.random(deviation.shape) < 0.15] = np.nan
    step_hours = 0.5
    alphas = _level_alphas(step_hours)
    phis = np.array([0.0, 0.5, 0.9, 1.0])
    horizons = _horizons(48, deviation.shape[1])
    errors = _dynamics_errors(deviation, alphas, phis, horizons)
    finite = np.isfinite(deviation)
    filled = np.where(finite, deviation, 0.0)
    expected = np.zeros_like(errors)
    for a, alpha in enumerate(alphas):
        level = recursive(filled, float(alpha)) / np.maximum(
            recursive(finite.astype(float), float(alpha)), 1e-300
        )
        level = np.where(finite.cumsum(axis=1) > 0, level, 0.0) if alpha > 0 else 0 * filled
        for p, phi in enumerate(phis):
            for k in horizons:
                both = finite[:, :-k] & finite[:, k:]
                miss = (filled[:, k:] - level[:, :-k]) - phi**k * (filled[:, :-k] - level[:, :-k])
                expected[:, a, p] += np.where(both, miss**2, 0.0).sum(axis=1)
    np.testing.assert_allclose(errors, expected, rtol=1e-9)


def test_circular_sums_wrap_around_the_season() -> None:
    x = np.random.default_rng(4).normal(size=(2, 3, 7))
    for half in (1, 3, 8):
        expected = sum(np.roll(x, shift, axis=-1) for shift in range(-half, half + 1))
        np.testing.assert_allclose(smooth_circular(x, half), expected, atol=1e-12)


@pytest.mark.parametrize("runs", [1, 3, 100])
def test_taking_columns_in_runs_equals_taking_them_one_by_one(runs: int) -> None:
    rng = np.random.default_rng(runs)
    x = rng.normal(size=(4, 50))
    starts = rng.integers(0, 40, runs)
    columns = np.concatenate([np.arange(s, s + rng.integers(1, 10)) for s in starts])
    np.testing.assert_array_equal(take_columns(x, columns), x[:, columns])
    assert take_columns(x, columns[:0]).shape == (4, 0)


def test_slot_sums_place_runs_of_slots() -> None:
    """A week of columns starting mid-season (a rotation of the slots) lands on its slots."""
    values = seasonal(n=3, weeks=1, gaps=0.2)[:, :12]
    observed = Observed.of(values)
    rotated = (np.arange(12) + 5) % 12
    total, count = slot_sums_at(observed, rotated, 12)
    np.testing.assert_array_equal(total[:, rotated], observed.filled)
    np.testing.assert_array_equal(count[:, rotated], observed.finite)


@pytest.mark.parametrize("zone", [None, "Europe/Berlin"])
@pytest.mark.parametrize("width", [3 * 2016, 4 * 2016, 4 * 2016 - 100])
def test_sums_folded_from_weeks_equal_sums_over_the_columns(zone: str | None, width: int) -> None:
    """Across the autumn clock change (an hour of slots twice) and a partial oldest week."""
    rng = np.random.default_rng(5)
    values = rng.normal(50, 10, (3, width))
    values[rng.random(values.shape) < 0.1] = np.nan
    seasons = Seasons.of(300)
    # The window ends 2024-11-10 00:00 UTC: four weeks back holds 27 October's change.
    slots = None if zone is None else LocalSlots.of(1_731_196_800, 300, width, 288, ZoneInfo(zone))
    window = Window(values, seasons, 288, slots)
    observed = Observed.of(values)
    for period in (seasons.week, seasons.day):
        total, count = window.sums(period)
        if slots is None:
            expected_total, expected_count = slot_sums(observed, period)
        else:
            expected_total, expected_count = slot_sums_at(
                observed, slots.columns(width, period), period
            )
        np.testing.assert_allclose(total, expected_total, rtol=1e-12)
        np.testing.assert_array_equal(count, expected_count)


def stepwise(
    beta: np.ndarray, known: np.ndarray, slow: np.ndarray, blend: np.ndarray, day: int
) -> np.ndarray:
    """Return profile_ridge's forecast deviations by its equation, one step after another."""
    lags, n_features = LAGS, N_FEATURES
    alpha = 1.0 - 0.5 ** (24.0 / day / SLOW_HALF_LIFE_HOURS)
    series = [list(row) for row in known]
    slow = slow.copy()
    path = np.empty(blend.shape)
    for step in range(blend.shape[1]):
        for row, values in enumerate(series):
            back = len(values) - day
            features = [blend[row, step], *values[-1 : -lags - 1 : -1]]
            features += [values[back] if back >= 0 else 0.0, slow[row], 1.0]
            value = float(np.dot(beta[row, :n_features], features))
            values.append(value)
            slow[row] = alpha * value + (1.0 - alpha) * slow[row]
            path[row, step] = value
    return path


@pytest.mark.parametrize(("day", "h"), [(288, 288), (48, 100), (5, 17), (288, 1)])
def test_ridge_forecast_in_blocks_equals_the_equation_step_by_step(day: int, h: int) -> None:
    rng = np.random.default_rng(day + h)
    known = rng.normal(0, 10, (4, 3 * day + 7))
    beta = rng.normal(0, 0.15, (4, N_FEATURES))
    slow = rng.normal(0, 3, 4)
    blend = rng.normal(0, 5, (4, h))
    np.testing.assert_allclose(
        _run(beta, known, slow, blend, day),
        stepwise(beta, known, slow, blend, day),
        rtol=1e-10,
        atol=1e-9,
    )
