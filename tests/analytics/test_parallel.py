"""Fits on several threads: the same forecasts as on one, the cap kept, failures and interrupts
surfacing at once with no thread left behind."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from analytics.base import SeriesModel
from analytics.models import MODELS, build
from analytics.panel import FloatArray, Panel, from_long
from analytics.parallel import (
    MOST_REQUESTED,
    MOST_WORKERS,
    map_ordered,
    usable_cores,
    worker_count,
)
from analytics.profile import Seasons
from analytics.window import Window
from streetsense.config import load_settings
from streetsense.errors import ConfigError
from tests.analytics.synthetic import STEP, panel, seasonal

HORIZON = 10
# A deadline for threads to meet at a barrier: only a broken implementation waits this long.
MEET_S = 30.0


def _uneven(n: int, seed: int) -> Panel:
    """Return n series of uneven lengths and ends (local-zone chunks group rows by end)."""
    values = seasonal(n=n, weeks=3, seed=seed, gaps=0.05)
    rng = np.random.default_rng(seed)
    drop = rng.integers(0, 3, n) * 2  # ends a few slots apart
    codes = np.concatenate([np.full(values.shape[1] - d, i) for i, d in enumerate(drop)])
    seconds = np.concatenate(
        [1_704_067_200 + STEP * np.arange(values.shape[1] - d) for d in drop]
    ).astype(np.int64)
    kept = np.concatenate([values[i, : values.shape[1] - d] for i, d in enumerate(drop)])
    return from_long(
        codes.astype(np.int64), seconds, kept, ids=tuple(map(str, range(n))), step=STEP
    )


@pytest.mark.parametrize("name", ["auto", "anchored"])
@pytest.mark.parametrize(("zone", "holidays"), [("UTC", ""), ("Europe/Berlin", "DE-HE")])
def test_threads_give_the_same_forecasts_as_one(name: str, zone: str, holidays: str) -> None:
    data = _uneven(16, seed=5)
    options = {"horizon": HORIZON, "chunk_rows": 3, "timezone": zone, "holidays": holidays}
    alone = build(name, workers=1, **options).fit(data)
    expected = alone.predict(HORIZON)
    for workers in (2, 3):
        model = build(name, workers=workers, **options).fit(data)
        result = model.predict(HORIZON)
        np.testing.assert_array_equal(result.mean, expected.mean)
        np.testing.assert_array_equal(result.lo, expected.lo)
        np.testing.assert_array_equal(result.hi, expected.hi)
        np.testing.assert_array_equal(model.residuals, alone.residuals)
        assert result.model == expected.model
        assert model.state.keys() == alone.state.keys()
        for key, value in model.state.items():
            np.testing.assert_array_equal(value, alone.state[key])


class _Recording(SeriesModel):
    """A model that notes which thread fitted each chunk, and fails on a chunk holding the
    value `fail_on`; its forecast is any (the window's first values)."""

    name: ClassVar[str] = "recording"
    threads: set[str]
    fail_on: float = np.inf

    def history(self, seasons: Seasons) -> int:
        """Return a week."""
        return seasons.week

    def _fit_predict(self, window: Window) -> FloatArray:
        """Return the window's first values; raise on a chunk holding `fail_on`."""
        self.threads.add(threading.current_thread().name)
        if (window.values == self.fail_on).any():
            raise ValueError(f"unusable value {self.fail_on} in a chunk")
        return window.values[:, : window.h]


def _fit_threads() -> set[str]:
    """Return the fit's threads still running once each had until the deadline to end (an
    interrupt may land while a thread starts, before the pool can join it: it ends alone)."""
    threads = [t for t in threading.enumerate() if t.name.startswith("analytics-fit")]
    for thread in threads:
        thread.join(timeout=MEET_S)
    return {t.name for t in threads if t.is_alive()}


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_fit_runs_on_at_most_its_workers(workers: int) -> None:
    model = _Recording(horizon=HORIZON, chunk_rows=1, workers=workers)
    model.threads = set()
    model.fit(panel(seasonal(n=12, weeks=2)))
    assert 1 <= len(model.threads) <= workers
    assert not _fit_threads()  # none left running after the fit


def test_map_ordered_keeps_the_cap_and_the_order() -> None:
    # Two items at a time must meet at the barrier: with fewer threads it breaks on its
    # deadline, and a third thread at once would show in the count.
    meeting = threading.Barrier(2, timeout=MEET_S)
    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def work(item: int) -> int:
        with lock:
            running[0] += 1
            running[1] = max(running)
        meeting.wait()
        with lock:
            running[0] -= 1
        return item * item

    assert list(map_ordered(work, list(range(20)), workers=2)) == [i * i for i in range(20)]
    assert running[1] == 2


def test_a_workers_exception_reaches_the_caller() -> None:
    values = seasonal(n=12, weeks=2)
    values[7, -3] = -999.0
    model = _Recording(horizon=HORIZON, chunk_rows=1, workers=2)
    model.threads, model.fail_on = set(), -999.0
    with pytest.raises(ValueError, match=r"unusable value -999\.0"):
        model.fit(panel(values))
    assert not _fit_threads()


def test_an_interrupt_stops_the_fit_and_cancels_the_chunks_not_started() -> None:
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 0:
            # What Ctrl-C does: SIGINT to the process, handled in the main thread.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        return item

    with pytest.raises(KeyboardInterrupt):
        for _ in map_ordered(work, list(range(10_000)), workers=2):
            pass
    assert len(started) < 10_000
    assert not _fit_threads()


def test_worker_count_defaults_to_the_usable_cores_within_bounds() -> None:
    assert worker_count(None) == worker_count(0) == max(1, min(usable_cores(), MOST_WORKERS))
    assert worker_count(3) == 3
    assert usable_cores() <= (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="workers must be 0"):
        worker_count(-1)
    assert build("auto", workers=0).workers == worker_count(0)


def test_the_workers_setting_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "streetsense.toml"
    path.write_text("[analytics]\nworkers = 3\n")
    assert load_settings(path, environ={}).analytics.workers == 3
    settings = load_settings(path, environ={"STREETSENSE_ANALYTICS_WORKERS": "2"})
    assert settings.analytics.workers == 2
    path.write_text("")
    assert load_settings(path, environ={}).analytics.workers == 0
    with pytest.raises(ConfigError, match="STREETSENSE_ANALYTICS_WORKERS"):
        load_settings(path, environ={"STREETSENSE_ANALYTICS_WORKERS": "-1"})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_takes_a_worker_count(name: str) -> None:
    data = panel(seasonal(n=5, weeks=3, seed=2, gaps=0.05))
    one = build(name, horizon=HORIZON, chunk_rows=1, workers=1).fit(data).predict(HORIZON)
    two = build(name, horizon=HORIZON, chunk_rows=1, workers=2).fit(data).predict(HORIZON)
    np.testing.assert_array_equal(one.mean, two.mean)
    np.testing.assert_array_equal(one.hi, two.hi)


def test_a_mistyped_worker_count_is_held_to_a_ceiling() -> None:
    """analytics.workers = 1000 would give a thread (and a chunk's temporaries) per chunk."""
    assert worker_count(MOST_REQUESTED) == MOST_REQUESTED
    assert worker_count(1000) == MOST_REQUESTED
