"""One contract for every model, and behaviour of the individual models."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.models import MODELS, Auto, build
from analytics.panel import FloatArray, Panel, from_long, from_matrix
from analytics.profile import Observed, slot_sums_at
from tests.analytics.synthetic import DAY, STEP, panel, seasonal

HORIZON = 10


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_contract(name: str) -> None:
    values = seasonal(n=6, weeks=3, gaps=0.05)
    values[1, -5:] = np.nan  # a series whose last readings are gaps
    values[2, :] = np.nan  # a series with nothing at all
    values[3, : -2 * DAY] = np.nan  # a short series
    values[5, :] = 42.0  # a constant series
    capacity = np.array([np.nan, 200.0, np.nan, 100.0, 60.0, np.nan])
    data = panel(values, capacity)
    before = data.values.copy()

    model = build(name, horizon=HORIZON)
    result = model.fit(data).predict(HORIZON)

    assert result.mean.shape == result.lo.shape == result.hi.shape == (6, HORIZON)
    assert len(result.model) == 6
    np.testing.assert_array_equal(data.values, before)  # input untouched, gaps still NaN
    assert np.isnan(result.mean[2]).all()  # no data, no invented forecast
    others = np.delete(np.arange(6), 2)
    assert np.isfinite(result.mean[others]).all()
    assert (result.lo[others] <= result.mean[others]).all()
    assert (result.mean[others] <= result.hi[others]).all()
    bounded = np.isfinite(capacity)
    assert (result.lo[bounded] >= 0).all()
    assert (result.hi[bounded] <= capacity[bounded, None]).all()
    again = build(name, horizon=HORIZON).forecast(data, HORIZON)
    np.testing.assert_allclose(again.mean, result.mean, equal_nan=True)
    np.testing.assert_allclose(again.hi, result.hi, equal_nan=True)
    np.testing.assert_allclose(result.mean[5], 42.0)  # constant in, the constant out
    shorter = model.predict(3)
    np.testing.assert_allclose(shorter.mean, result.mean[:, :3], equal_nan=True)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_is_vectorised_not_coupled(name: str) -> None:
    """A series' point forecast does not depend on which other series share the panel, unless
    the model fits some parameters for the group (then it still forecasts a series alone)."""
    values = seasonal(n=4, weeks=3, seed=3)
    together = build(name, horizon=HORIZON).fit(panel(values)).predict(HORIZON)
    alone = build(name, horizon=HORIZON).fit(panel(values[1:2])).predict(HORIZON)
    if not MODELS[name].pooled:
        np.testing.assert_allclose(together.mean[1], alone.mean[0])
    assert np.isfinite(alone.mean).all()


def test_persistence_repeats_last_value() -> None:
    values = np.tile(np.arange(4 * DAY, dtype=np.float64), (2, 1))
    values[1, -3:] = np.nan
    result = build("naive", horizon=4).fit(panel(values)).predict(4)
    np.testing.assert_array_equal(result.mean[0], [4 * DAY - 1] * 4)
    np.testing.assert_array_equal(result.mean[1], [4 * DAY - 4] * 4)


def test_seasonal_naive_takes_value_a_week_back_and_skips_gaps() -> None:
    values = np.arange(3 * 7 * DAY, dtype=np.float64)[None, :]
    week = 7 * DAY
    expected = values[0, -week : -week + 3].copy()
    values[0, -week] = np.nan  # gap a week back: take two weeks back
    result = build("snaive_week", horizon=3).fit(panel(values)).predict(3)
    np.testing.assert_array_equal(result.mean[0], [expected[0] - week, expected[1], expected[2]])


def test_time_of_week_mean_averages_same_slot() -> None:
    week = 7 * DAY
    values = np.concatenate([np.full(week, 10.0), np.full(week, 20.0)])[None, :]
    result = build("tow_mean", horizon=5).fit(panel(values)).predict(5)
    np.testing.assert_allclose(result.mean[0], 15.0)


def test_capacity_bounds_the_forecast() -> None:
    values = np.full((1, 2 * 7 * DAY), 90.0)
    values[0, -10:] = 150.0  # readings above capacity push a level model upwards
    result = build("profile_es", horizon=8).fit(panel(values, np.array([100.0]))).predict(8)
    assert (result.mean <= 100).all() and (result.hi <= 100).all()


def test_from_long_aligns_averages_and_keeps_gaps() -> None:
    seconds = np.array([0, 1790, 1810, 5400 + 100, 0], dtype=np.int64)
    codes = np.array([0, 0, 0, 0, 1], dtype=np.int64)
    values = np.array([1.0, 2.0, 4.0, 8.0, 5.0])
    data = from_long(codes, seconds, values, ids=("a", "b"), step=STEP)
    np.testing.assert_array_equal(data.indptr, [0, 4, 5])
    np.testing.assert_array_equal(data.values[:4], [1.0, 3.0, np.nan, 8.0])
    assert data.end[0] == 3 * STEP
    np.testing.assert_array_equal(data.matrix(), [[1.0, 3.0, np.nan, 8.0], [np.nan] * 3 + [5.0]])


def test_auto_shares_work_without_changing_any_candidate() -> None:
    """Each series gets exactly its chosen candidate's forecast and residuals, as if run alone."""
    # At 5 min the smoothing model tunes on fewer columns than the regression fits on, so it
    # takes a slice of the regression's shared baseline.
    rng = np.random.default_rng(11)
    values = np.repeat(seasonal(n=8, weeks=3, seed=11), 6, axis=1)
    values += rng.normal(0, 2, values.shape)
    values[rng.random(values.shape) < 0.04] = np.nan
    values[2, : -3 * 6 * DAY] = np.nan  # short: falls back to weekly seasonal naive
    capacity = np.where(np.arange(8) % 2 == 0, 120.0, np.nan)
    data = from_matrix(values, step=300, end=1_704_067_200, capacity=capacity)
    auto = build("auto", horizon=HORIZON).fit(data)
    chosen = auto.predict(HORIZON)
    names = [kind.name for kind in Auto.candidates]
    alone = {name: build(name, horizon=HORIZON).fit(data) for name in names}
    # The choice, redone from each candidate fitted alone: lowest calibration MAE per series.
    errors = np.stack([np.abs(alone[name].residuals).reshape(8, -1) for name in names])
    known = np.isfinite(errors)
    mae = np.where(known, errors, 0.0).sum(axis=2) / np.maximum(known.sum(axis=2), 1)
    mae[known.sum(axis=2) == 0] = np.inf
    expected = [names[i] for i in mae.argmin(axis=0)]
    expected[2] = "snaive_week"  # too few residuals to judge: the fallback
    assert list(chosen.model) == expected
    assert {"profile_es", "profile_ridge"} <= set(chosen.model)
    # A step apart from the series' choice is another candidate's (persistence included), one
    # that clearly beat it at that step, with that candidate's residuals there.
    alone["naive"] = build("naive", horizon=HORIZON).fit(data)
    for i, name in enumerate(chosen.model):
        for step in range(HORIZON):
            takers = [
                other
                for other in (name, *alone)
                if other in alone
                and alone[other].predict(HORIZON).mean[i, step] == chosen.mean[i, step]
            ]
            assert takers, (i, step)
            np.testing.assert_array_equal(
                auto.residuals[i, :, step], alone[takers[0]].residuals[i, :, step]
            )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_chunking_does_not_change_forecasts(name: str) -> None:
    values = seasonal(n=7, weeks=3, seed=4, gaps=0.05)
    whole = build(name, horizon=HORIZON, chunk_rows=512).fit(panel(values)).predict(HORIZON)
    pieces = build(name, horizon=HORIZON, chunk_rows=2).fit(panel(values)).predict(HORIZON)
    np.testing.assert_array_equal(whole.mean, pieces.mean)
    np.testing.assert_array_equal(whole.hi, pieces.hi)


def test_anchored_starts_from_the_latest_observation_and_fades_in_time() -> None:
    values = seasonal(n=2, weeks=4, seed=8)
    clean = values.copy()
    values[0, -7:] += 40.0  # the last hours far above the usual
    values[0, -3:] = np.nan  # the last 1.5 h missing: the anchor is older than the origin
    model = build("anchored", horizon=DAY).fit(panel(values))
    result = model.predict(DAY)
    usual = build("anchored", horizon=DAY).fit(panel(clean)).predict(DAY).mean[0]
    lift = result.mean[0] - usual
    assert lift[0] > 15  # starts near the latest observation, not at the profile
    assert lift[-1] < lift[0] / 2  # the departure fades over the day
    half_life = model.state["half_life_s"]
    assert half_life.shape == (2,) and (half_life > 0).all()


def test_anchored_follows_a_level_shift_within_days() -> None:
    values = seasonal(n=1, weeks=5, seed=9)
    shifted = values.copy()
    shifted[0, -4 * DAY :] += 25.0  # a new tenant four days ago
    before = build("anchored", horizon=DAY).fit(panel(values)).predict(DAY).mean[0]
    after = build("anchored", horizon=DAY).fit(panel(shifted)).predict(DAY).mean[0]
    assert (after - before)[DAY // 2 :].mean() > 10  # still up half a day ahead


def test_slot_sums_place_distinct_slots_and_add_shared_ones() -> None:
    """Columns with a slot each are placed, columns sharing one are added: both give the sums."""
    values = seasonal(n=3, weeks=1, gaps=0.2)[:, :10]
    observed = Observed.of(values)
    distinct = np.array([9, 3, 0, 7, 1, 2, 8, 4, 6, 5])
    total, count = slot_sums_at(observed, distinct, 12)
    np.testing.assert_array_equal(total[:, distinct], observed.filled)
    np.testing.assert_array_equal(count[:, distinct], observed.finite)
    assert not total[:, 10:].any() and not count[:, 10:].any()
    shared = distinct % 4
    total, count = slot_sums_at(observed, shared, 4)
    for slot in range(4):
        np.testing.assert_allclose(total[:, slot], observed.filled[:, shared == slot].sum(axis=1))
        np.testing.assert_array_equal(count[:, slot], observed.finite[:, shared == slot].sum(1))


def _hourly_blocks(n: int, weeks: int, h: int, seed: int) -> tuple[Panel, FloatArray]:
    """Return series that hold a random level for 3 hours at a time, and their next h values:
    the last value foretells the next steps well and the far ones badly, where a profile (the
    mean level) does better."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * 7 * DAY + h)
    levels = rng.normal(0, 10, (n, t.size // 6 + 2))
    start = rng.integers(0, 6, n)[:, None]
    values = 100 + np.take_along_axis(levels, (t[None, :] + start) // 6, axis=1)
    values += rng.normal(0, 0.5, values.shape)
    return panel(values[:, :-h]), values[:, -h:]


@pytest.mark.parametrize("seed", [0, 2])
def test_auto_takes_per_step_the_candidate_that_clearly_wins_there(seed: int) -> None:
    """Persistence wins the first steps by far and loses the last: auto follows it near, and
    stays with the series' choice far."""
    h = 6
    data, truth = _hourly_blocks(n=40, weeks=4, h=h, seed=seed)
    error = {
        name: np.abs(truth - build(name, horizon=h).fit(data).predict(h).mean).mean(axis=0)
        for name in ("auto", "naive", *(kind.name for kind in Auto.candidates))
    }
    whole = np.min([error[kind.name] for kind in Auto.candidates], axis=0)
    assert error["naive"][0] < 0.85 * whole[0] and error["naive"][-1] > 1.15 * whole[-1]
    # One choice per series takes the best candidate of all steps: near, no better than it.
    assert error["auto"][0] < 0.85 * whole[0]
    assert error["auto"][-1] < 1.05 * whole[-1]
