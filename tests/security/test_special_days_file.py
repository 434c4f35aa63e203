"""A hostile or broken special-days file (`--special-days`, `city.special_days`) is refused
whole with the file, line and fix, never half-read, and its text never reaches a log raw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analytics.calendar_file import MAX_BYTES, MAX_PERIODS, CalendarError, read_periods
from analytics.cli import city_special_days
from streetsense.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _csv(tmp_path: Path, rows: list[str], name: str = "periods.csv") -> Path:
    path = tmp_path / name
    path.write_text("name,start,end,kind\n" + "".join(f"{row}\n" for row in rows), "utf-8")
    return path


def test_an_oversize_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.ics"
    with path.open("w") as handle:
        handle.write("BEGIN:VCALENDAR\r\n")
        handle.write("X-PADDING:" + "a" * (MAX_BYTES + 10) + "\r\n")
    with pytest.raises(CalendarError, match=r"larger than 1,000,000 bytes"):
        read_periods(path)


def test_too_many_periods_are_refused(tmp_path: Path) -> None:
    rows = [f"day {k},2024-01-01,2024-01-01,school" for k in range(MAX_PERIODS + 1)]
    with pytest.raises(CalendarError, match=rf"more than {MAX_PERIODS} periods"):
        read_periods(_csv(tmp_path, rows))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,9999-01-01,9999-01-02,school", r"line 2: the year 9999 is outside 1990-2100"),
        ("x,0001-01-01,0001-01-02,school", r"line 2: the year 1 is outside"),
        ("x,2020-01-01,2024-12-31,school", r"line 2: 1827 days long; .* at most 366 days"),
        ("x,2024-02-30,2024-03-01,school", r"line 2: start '2024-02-30' is not a date"),
        ("x,1e308,2024-03-01,school", r"is not a date; write it as YYYY-MM-DD"),
        ("x,2024-01-01,2024-01-02,'; DROP TABLE readings; --", r"line 2: kind"),
    ],
)
def test_absurd_or_malformed_dates_are_named(tmp_path: Path, row: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        read_periods(_csv(tmp_path, [row]))


def test_names_with_control_characters_are_refused_and_shown_escaped(tmp_path: Path) -> None:
    path = _csv(tmp_path, ['"Ferien\x1b[31m\nFAKE LOG LINE",2024-01-01,2024-01-02,school'])
    with pytest.raises(CalendarError) as caught:
        read_periods(path)
    message = str(caught.value)
    assert "line 2" in message and "control characters" in message
    assert "\x1b" not in message and "\n" not in message  # a log line cannot be forged


@pytest.mark.parametrize(
    "name",
    ["=HYPERLINK(\"http://evil.example\")", "'); DROP TABLE readings; --", "$(rm -rf /)",
     "<script>alert(1)</script>"],
)  # fmt: skip
def test_injection_like_names_are_plain_text(tmp_path: Path, name: str) -> None:
    quoted = '"' + name.replace('"', '""') + '"'
    (period,) = read_periods(_csv(tmp_path, [f"{quoted},2024-01-01,2024-01-02,school"]))
    assert period.name == name  # kept as text: names only label logs, never reach SQL or a shell


def test_binary_junk_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(b"name,start,end\nok,2024-01-01,2024-01-02\n\xff\xfe\x00garbage\n")
    with pytest.raises(CalendarError, match=r"line 3: not UTF-8 text"):
        read_periods(path)


def test_the_job_refuses_a_bad_file_naming_the_setting(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["x,2024-01-05,2024-01-01,school"])
    with pytest.raises(ConfigError, match=r"city.special_days: .*line 2: ends"):
        city_special_days(str(path))
    assert city_special_days("") == ()


def test_the_backtest_command_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("series_id,timestamp,value\nlot,2024-01-01T00:00:00,1\n")
    bad = _csv(tmp_path, ["ok,2024-01-01,2024-01-02,school", "x,2024-01-01,2024-99-01,school"])
    done = subprocess.run(
        [sys.executable, "-m", "analytics.cli", "forecast", "backtest", str(source), "--freq",
         "30min", "--horizon", "4", "--special-days", str(bad)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{bad}, line 3: end '2024-99-01' is not a date" in done.stderr
    assert "Traceback" not in done.stderr
