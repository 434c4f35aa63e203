"""The `forecast backtest` command end to end, in a subprocess, and its error paths."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.analytics.synthetic import seasonal

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would, from the repository."""
    return subprocess.run(
        [sys.executable, "-m", "analytics.cli", "forecast", "backtest", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def write_series(path: Path, n: int = 3, weeks: int = 3) -> None:
    """Write seasonal series as long CSV with capacity, irregular timestamps and a missing row."""
    values = seasonal(n=n, weeks=weeks, seed=5)
    start = datetime(2024, 3, 4, tzinfo=UTC)
    lines = ["series_id,timestamp,value,capacity"]
    for i, row in enumerate(values):
        for t, value in enumerate(row):
            if (t + i) % 97 == 0:
                continue  # missing sample
            jitter = timedelta(seconds=(t * 37) % 300)  # irregular arrival, aligned by --freq
            stamp = start + timedelta(minutes=30 * t) + jitter
            text = stamp.isoformat() if t % 2 else stamp.replace(tzinfo=None).isoformat()
            lines.append(f"lot-{i},{text},{value:.2f},{200 if i == 0 else ''}")
    path.write_text("\n".join(lines) + "\n")


def test_backtest_writes_table_and_json(tmp_path: Path) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    write_series(source)
    done = run(
        str(source), "--freq", "30min", "--horizon", "6", "--folds", "3", "--stride", "7",
        "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "profile_es" in done.stdout and "best:" in done.stdout
    result = json.loads(output.read_text())
    assert result["n_series"] == 3
    assert result["n_points"] == 3 * 6 * 3
    assert result["best"] in result["models"]
    for scores in result["models"].values():
        assert {
            "mae", "rmse", "mape", "mase", "coverage80", "width80", "interval80", "points",
            "per_step",
        } == set(scores)  # fmt: skip
        assert scores["mae"] > 0
        assert 0 <= scores["coverage80"] <= 1
    assert result["models"][result["best"]]["mae"] < result["models"]["naive"]["mae"]


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("series_id,time,value\na,2024-01-01T00:00:00,1\n", (), "missing column 'timestamp'"),
        (
            "series_id,timestamp,value\na,2024-01-01T00:00:00,1\na,yesterday,2\n",
            (),
            ":3: bad timestamp 'yesterday'",
        ),
        ("series_id,timestamp,value\na,2024-01-01T00:00:00,x\n", (), ":2: value or capacity"),
        (
            "series_id,timestamp,value\na,2024-01-01T00:00:00,1\n",
            ("--freq", "7parsecs"),
            "unknown frequency '7parsecs'",
        ),
        ("series_id,timestamp,value\n", (), "no data rows"),
        (
            "series_id,timestamp,value\na,2024-01-01T00:00:00,1\n",
            ("--freq", "30min", "--timezone", "Mars/Olympus"),
            "unknown time zone 'Mars/Olympus'",
        ),
    ],
)
def test_bad_input_exits_2_with_reason(
    tmp_path: Path, content: str, options: tuple[str, ...], message: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_text(content)
    done = run(str(source), "--horizon", "4", *(options or ("--freq", "30min")))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    done = run(str(tmp_path / "absent.csv"), "--freq", "5min", "--horizon", "4")
    assert done.returncode == 2
    assert "cannot open" in done.stderr and "Traceback" not in done.stderr


def test_register_adds_forecast_backtest() -> None:
    import argparse

    from analytics.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["forecast", "backtest", "x.csv", "--freq", "5min", "--horizon", "3"])
    assert callable(args.handler)
    assert args.folds is None and args.season_days == 7 and args.output is None


def test_backtest_counts_seasons_in_the_given_time_zone(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    # A peak at 08:00 Copenhagen time every day, timestamps in UTC, across the spring-forward
    # change of 2024-03-31; the backtest folds lie after it.
    zone = ZoneInfo("Europe/Copenhagen")
    start = datetime(2024, 3, 10, tzinfo=UTC)
    lines = ["series_id,timestamp,value"]
    for t in range(4 * 7 * 48):
        moment = start + timedelta(minutes=30 * t)
        local = moment.astimezone(zone)
        value = 110 if (local.hour, local.minute) == (8, 0) else 10
        lines.append(f"s,{moment.isoformat()},{value}")
    source.write_text("\n".join(lines) + "\n")
    mae = {}
    for timezone in ("Europe/Copenhagen", "UTC"):
        output = tmp_path / f"{timezone.replace('/', '-')}.json"
        done = run(
            str(source), "--freq", "30min", "--horizon", "48", "--folds", "1",
            "--timezone", timezone, "--output", str(output),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        mae[timezone] = json.loads(output.read_text())["models"]["tow_mean"]["mae"]
    # On the local wall clock the pattern is exact; on UTC the peak moved an hour.
    assert mae["Europe/Copenhagen"] == pytest.approx(0.0, abs=1e-9)
    assert mae["UTC"] > 1.0


def test_horizon_in_time_equals_horizon_in_steps(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    write_series(source)
    results = []
    for horizon in ("6", "3h", "180min"):
        output = tmp_path / f"{horizon}.json"
        done = run(
            str(source), "--freq", "30min", "--horizon", horizon, "--folds", "3",
            "--stride", "1h", "--output", str(output),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        results.append(json.loads(output.read_text()))
    assert results[0] == results[1] == results[2]
    assert len(results[0]["models"]["auto"]["per_step"]["mae"]) == 6


def test_default_origins_cover_two_weeks_at_every_time_of_day() -> None:
    from analytics.backtest import backtest
    from tests.analytics.synthetic import panel

    result = backtest(panel(seasonal(n=2, weeks=4)), ["naive", "snaive_week"], horizon=4)
    times = [datetime.fromtimestamp(t, UTC) for t in result.origins]
    assert times[-1] - times[0] >= timedelta(days=13, hours=20)
    assert len({(t.hour, t.minute) for t in times}) == 48  # every half hour of the day
    summary = result.summary()
    for scores in summary["models"].values():  # type: ignore[attr-defined]
        assert scores["points"] == summary["shared_points"] > 0
        assert len(scores["per_step"]["coverage80"]) == 4


def test_origins_without_truth_are_reported(tmp_path: Path) -> None:
    """Day-only data: origins in the evening see only the night ahead."""
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    values = seasonal(n=2, weeks=3, seed=7)
    start = datetime(2024, 3, 4, tzinfo=UTC)
    lines = ["series_id,timestamp,value"]
    for i, row in enumerate(values):
        for t, value in enumerate(row):
            stamp = start + timedelta(minutes=30 * t)
            if 9 <= stamp.hour < 21:
                lines.append(f"lot-{i},{stamp.isoformat()},{value:.2f}")
    source.write_text("\n".join(lines) + "\n")
    done = run(
        str(source), "--freq", "30min", "--horizon", "3h", "--folds", "8", "--stride", "3h",
        "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(output.read_text())
    # Origins every 3 h back from 17:30 (the last reading is at 20:30): those at 20:30, 23:30,
    # 02:30 and 05:30 see only the night.
    assert len(result["empty_origins"]) == 4
    assert set(result["empty_origins"]) <= set(result["origins"])
    assert "holds no truth" in done.stderr and "held no truth" in done.stderr


def test_seasonal_naive_is_named_by_its_season(tmp_path: Path) -> None:
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    write_series(source)
    done = run(
        str(source), "--freq", "30min", "--horizon", "4", "--folds", "2", "--season-days", "1",
        "--output", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = set(json.loads(output.read_text())["models"])
    assert "snaive_day" in names and "snaive_week" not in names


def test_help_says_what_capacity_does() -> None:
    done = run("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "bounds forecasts and bands to [0, capacity]" in text
    assert "masked as gaps" in text and "9h" in text


@pytest.mark.parametrize(
    ("horizon", "message"),
    [("45min", "not a whole number of 30-minute steps"), ("soon", "--horizon 'soon'"),
     ("0", "at least one step")],
)  # fmt: skip
def test_bad_horizon_exits_2_with_reason(tmp_path: Path, horizon: str, message: str) -> None:
    source = tmp_path / "in.csv"
    write_series(source, n=1)
    done = run(str(source), "--freq", "30min", "--horizon", horizon)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_bad_series_get_a_baseline_or_no_forecast_never_a_crash(tmp_path: Path) -> None:
    """Constant, all-missing, too short, over capacity and capacity-changing series together."""
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    good = seasonal(n=1, weeks=3, seed=6)[0]
    start = datetime(2024, 3, 4, tzinfo=UTC)
    lines = ["series_id,timestamp,value,capacity"]
    for t, value in enumerate(good):
        stamp = (start + timedelta(minutes=30 * t)).isoformat()
        lines.append(f"good,{stamp},{value:.2f},200")
        lines.append(f"constant,{stamp},50,200")
        lines.append(f"missing,{stamp},,200")
        lines.append(f"over,{stamp},{value + 300:.2f},200")
        capacity = 200 if t < len(good) // 2 else 80
        lines.append(f"changing,{stamp},{min(value, capacity):.2f},{capacity}")
        if t < 3:
            lines.append(f"short,{stamp},{value:.2f},200")
    source.write_text("\n".join(lines) + "\n")
    done = run(
        str(source), "--freq", "30min", "--horizon", "2h", "--folds", "4", "--output", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert "over: excluded, counter above capacity too often" in done.stderr
    result = json.loads(output.read_text())  # allow_nan=False on writing: no NaN inside
    assert result["shared_points"] > 0
    for scores in result["models"].values():
        assert scores["mae"] is not None and scores["coverage80"] is not None


def test_workers_change_no_score_and_a_negative_count_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    write_series(source, n=4)
    outputs = []
    for workers in ("1", "2"):
        output = tmp_path / f"out-{workers}.json"
        common = ("--freq", "30min", "--horizon", "6", "--folds", "2", "--output", str(output))
        done = run(str(source), *common, "--workers", workers)
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(output.read_text()))
    assert outputs[0] == outputs[1]
    done = run(str(source), "--freq", "30min", "--horizon", "6", "--workers", "-1")
    assert done.returncode == 2
    assert "--workers must be 0" in done.stderr and "Traceback" not in done.stderr
    done = run(str(source), "--freq", "30min", "--horizon", "6", "--workers", "100000")
    assert done.returncode == 2
    assert "up to 64" in done.stderr and "Traceback" not in done.stderr


def test_a_few_folds_spread_over_two_weeks_not_a_few_hours(tmp_path: Path) -> None:
    """--folds 3 with the default spacing judged 6 h of one day; spread, it judges days."""
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    write_series(source)
    done = run(
        str(source), "--freq", "30min", "--horizon", "6", "--folds", "3", "--output", str(output)
    )
    assert done.returncode == 0, done.stderr
    times = [datetime.fromisoformat(t) for t in json.loads(output.read_text())["origins"]]
    assert len(times) == 3
    assert times[-1] - times[0] >= timedelta(days=9)
    assert len({(t.hour, t.minute) for t in times}) == 3


def test_default_origins_leave_a_season_of_history_when_the_data_allow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two weeks of data: origins in the first week would pit the models against a weekly
    seasonal naive with no week to repeat (it repeats the last value), flattering them."""
    from analytics.backtest import backtest
    from tests.analytics.synthetic import STEP, panel

    data = panel(seasonal(n=2, weeks=2, seed=8))
    result = backtest(data, ["naive", "snaive_week"], horizon=4)
    start = int(data.end[0]) - (data.lengths[0] - 1) * STEP
    assert min(result.origins) - start >= 7 * 86_400 - STEP
    assert max(result.origins) - min(result.origins) >= 6 * 86_400
    assert "less than 7 days of data" not in caplog.text
    # One week of data leaves no such origin: a day of history, and a warning saying so.
    short = backtest(panel(seasonal(n=2, weeks=1, seed=8)), ["naive"], horizon=4)
    assert short.origins and "less than 7 days of data before them" in caplog.text


def test_daily_data_is_judged_not_a_crash(tmp_path: Path) -> None:
    """At --freq 1d a fit window is shorter than profile_ridge's lags: it crashed on that."""
    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    write_series(source, n=2)
    done = run(str(source), "--freq", "1d", "--horizon", "2", "--output", str(output))
    assert done.returncode == 0, done.stderr[-800:]
    result = json.loads(output.read_text())
    assert result["shared_points"] > 0
    assert all(scores["mae"] is not None for scores in result["models"].values())
