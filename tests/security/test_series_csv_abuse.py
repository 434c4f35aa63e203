"""A hostile or broken series CSV (`streetsense forecast backtest`) is refused with the file,
line and fix, before it can exhaust memory, and its text never reaches a log raw."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from analytics import csvio
from analytics.csvio import InputError, read_csv

REPO = Path(__file__).resolve().parents[2]
HEADER = "series_id,timestamp,value\n"
# The command's address space in these tests: ample for a small file, far too little for a
# grid that one absurd timestamp stretches over millennia.
MEMORY_LIMIT = 3 * 1024**3


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _backtest(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics.cli", "forecast", "backtest", str(path), *options],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
        preexec_fn=_limited,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stamp", "line"), [("9999-12-31T00:00:00", "line 4"), ("0001-01-01T00:00:00+01:00", "line 4")]
)
def test_an_absurd_timestamp_is_refused_before_the_grid_is_built(
    tmp_path: Path, stamp: str, line: str
) -> None:
    path = tmp_path / "absurd.csv"
    path.write_text(
        HEADER + "a,2024-01-01T00:00:00,1\na,2024-01-02T00:00:00,2\n" + f"a,{stamp},3\n"
    )
    done = _backtest(path, "--freq", "5min", "--horizon", "4")
    assert done.returncode == 2, done.stderr[-500:]
    assert line in done.stderr and "correct a wrong date" in done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not UTF-8 text"),
        ("series_id;timestamp;value\nGie\xdfen;2024-01-01T00:00:00;1\n".encode("cp1252"),
         "iconv -f CP1252"),
        ((HEADER + "a,2024-01-01T00:00:00," + "1" * 200_000 + "\n").encode(), "unreadable row"),
        ((HEADER + "a,2024-01-01T00:00:00,inf\n").encode(), ":2: value or capacity is not a fin"),
        ((HEADER + "a,2024-01-01T00:00:00," + "9" * 400 + "\n").encode(), ":2: value or capa"),
        (b"series_id,timestamp,value,value\na,2024-01-01T00:00:00,1,2\n", "appears 2 times"),
    ],
)  # fmt: skip
def test_binary_oversize_and_non_finite_input_is_named(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "hostile.csv"
    path.write_bytes(content)
    done = _backtest(path, "--freq", "5min", "--horizon", "4")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_control_characters_in_a_series_name_are_refused_and_shown_escaped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inject.csv"
    path.write_text(HEADER + '"lot\x1b[31m\nWARNING forged line",2024-01-01T00:00:00,1\n')
    with pytest.raises(InputError) as caught:
        read_csv(path, 300)
    message = str(caught.value)
    assert "\\x1b[31m\\nWARNING forged line" in message
    assert "\x1b" not in message and "\n" not in message


def test_a_bad_timestamp_is_shown_escaped_and_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "stamp.csv"
    path.write_text(HEADER + f'a,"\x1b[2J{"x" * 5000}",1\n')
    with pytest.raises(InputError, match=r":2: bad timestamp '\\x1b\[2Jxxx") as caught:
        read_csv(path, 300)
    assert len(str(caught.value)) < 400


def test_too_many_readings_are_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csvio, "MAX_READINGS", 50)
    path = tmp_path / "many.csv"
    path.write_text(HEADER + "".join(f"a,2024-01-01T{h:02d}:00:00,{h}\n" for h in range(24)) * 3)
    with pytest.raises(InputError, match=r"more than 50 readings; split the file"):
        read_csv(path, 3600)
