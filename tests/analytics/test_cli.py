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
        str(source), "--freq", "30min", "--horizon", "6", "--folds", "3", "--output", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert "profile_es" in done.stdout and "best:" in done.stdout
    result = json.loads(output.read_text())
    assert result["n_series"] == 3
    assert result["n_points"] == 3 * 6 * 3
    assert result["best"] in result["models"]
    for scores in result["models"].values():
        assert {"mae", "rmse", "mape", "mase", "coverage80", "points", "per_step"} == set(scores)
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
    assert args.folds == 5 and args.season_days == 7 and args.output is None


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
